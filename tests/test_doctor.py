"""`mailtrace doctor` against real sshd servers: one honest row per server, whatever breaks."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel

from bot.doctor import DoctorRow, check_servers, render_doctor
from bot.settings import Limits, ServerConfig, Settings, SlackConfig, load_settings
from bot.sources.source import LogFile
from bot.sources.ssh import SSHPool
from tests.sshd import SshCluster, free_port, generate_key, start_sshd, write_rotated_logs


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections but never says a word of SSH."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def unreadable_logs(sshd_cluster: SshCluster) -> Path:
    """mail.log readable by anyone, mail.log.1 by root only."""
    directory = sshd_cluster.root / "logs" / "doctor-mixed"
    directory.mkdir(exist_ok=True)
    directory.chmod(0o755)
    (directory / "mail.log").write_text(
        "May 13 10:00:00 mx1 postfix/qmgr[900]: 4A1B2C3D4E: from=<a@example.net>, size=1, "
        "nrcpt=1 (queue active)\n"
    )
    (directory / "mail.log").chmod(0o644)
    (directory / "mail.log.1").write_text("May 12 10:00:00 mx1 postfix/qmgr[900]: x\n")
    (directory / "mail.log.1").chmod(0o600)
    return directory


def by_server(rows: list[DoctorRow]) -> dict[str, DoctorRow]:
    return {row.server: row for row in rows}


SLOW_START = re.compile(r"; every remote command takes (\d+) ms before it runs .*$")


def without_slow_start(reason: str) -> str:
    """The row's reason less the slow-start clause a login whose shell start-up files do work
    adds (as root's may on a developer's machine; the service account's plain shell does not)."""
    return SLOW_START.sub("", reason)


def log_file(
    path: str, first: datetime | None, last: datetime, *, readable: bool = True
) -> LogFile:
    """A listed log file whose first line is from `first` and last write at `last`."""
    return LogFile(path=path, size=100, mtime=last, readable=readable, first_seen=first)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in May 2024, UTC."""
    return datetime(2024, 5, day, hour, minute, tzinfo=UTC)


@pytest.mark.sshd
async def test_every_failure_gets_its_own_sentence(
    sshd_cluster: SshCluster, tmp_path: Path, silent_port: int, unreadable_logs: Path
) -> None:
    """Each broken server gets a row saying why; the healthy ones report files and span."""
    cluster = sshd_cluster
    closed = free_port()
    empty_journal = tmp_path / "journal"  # journalctl -D on a directory with no journal files
    empty_journal.mkdir()
    wrong_keys = cluster.write_known_hosts(
        tmp_path / "known_hosts", [cluster["mx1"].known_hosts_line(cluster["mx2"].host_key)]
    )
    servers = [
        cluster.server_config("mx1"),
        cluster.server_config("bastion", logs=("/nonexistent/mail.log*",)),
        cluster.server_config("mx2", jump="bastion"),
        ServerConfig(name="local", local=True, logs=(f"{cluster.logs['mx2']}/mail.log*",)),
        cluster.server_config("down", server="mx1", port=closed),
        cluster.server_config("silent", server="mx1", port=silent_port),
        cluster.server_config("stranger", server="mx1", keys=(str(cluster.stranger_key.private),)),
        cluster.server_config("impostor", server="mx1", known_hosts=str(wrong_keys)),
        cluster.server_config("empty", server="mx1", logs=(f"{cluster.root}/logs/mx1/none*",)),
        cluster.server_config(
            "journal", server="mx1", source="journald", journal_directory=str(empty_journal)
        ),
    ]
    if cluster.test_user:
        servers.append(
            cluster.server_config(
                "locked",
                server="mx1",
                user=cluster.test_user,
                logs=(f"{unreadable_logs}/mail.log*",),
            )
        )
    settings = cluster.settings(*servers, connect_timeout=1)
    rows = await check_servers(settings)
    assert [row.server for row in rows] == [s.name for s in servers]
    row = by_server(rows)
    mx1 = cluster["mx1"]

    for name in ("mx1", "mx2", "local"):
        assert row[name].ok, row[name]
        assert row[name].files == 4
        assert without_slow_start(row[name].reason) == "4 log files readable"
        assert row[name].first is not None
        assert row[name].last is not None
        assert (row[name].last - row[name].first).days == 3
        assert len(row[name].logs) == 4
        assert all(f.readable and f.first_seen is not None for f in row[name].logs)
        assert all(f.first_seen <= f.mtime for f in row[name].logs if f.first_seen)
    assert row["mx2"].route == f"ssh {cluster.login}@127.0.0.1:{cluster['mx2'].port} via bastion"
    assert row["local"].route == "local"
    assert row["local"].reason == "4 log files readable"  # a local shell is never timed

    expected = {
        "bastion": "no log files: nothing matches /nonexistent/mail.log*",
        "down": f"unreachable: connection refused by 127.0.0.1 port {closed}; "
        "is sshd running there?",
        "silent": f"unreachable: no SSH answer from 127.0.0.1 port {silent_port} within 1 s",
        "stranger": "authentication failed: 127.0.0.1 accepted none of the bot's keys for "
        f"user {cluster.login}; check that user's authorized_keys there",
        "impostor": "host key not verified: not in known_hosts or changed; "
        f"check known_hosts for [127.0.0.1]:{mx1.port}",
        "empty": f"no log files: nothing matches {cluster.root}/logs/mx1/none*",
        "journal": f"no log files: no entries in {empty_journal} (or no permission to read it)",
    }
    if cluster.test_user:
        expected["locked"] = (
            f"permission denied: 1 of 2 log files cannot be read by user {cluster.test_user}: "
            f"{unreadable_logs}/mail.log.1"
        )
    for name, reason in expected.items():
        assert not row[name].ok
        assert row[name].reason == reason
    if cluster.test_user:
        assert (row["locked"].files, row["locked"].unreadable) == (2, 1)
        locked = {f.path: f.readable for f in row["locked"].logs}
        assert locked == {
            f"{unreadable_logs}/mail.log": True,
            f"{unreadable_logs}/mail.log.1": False,
        }
        [line] = [
            line
            for line in render_doctor(rows).splitlines()
            if line.startswith(f"    {unreadable_logs}/mail.log.1 ")
        ]
        assert line.endswith("  UNREADABLE")


class HangingRunner:
    """A runner whose command never answers."""

    name = "hang"

    async def stream(self, command: str) -> AsyncIterator[str]:
        await asyncio.sleep(3600)
        yield command

    async def batches(self, command: str) -> AsyncIterator[list[str]]:
        await asyncio.sleep(3600)
        yield [command]

    async def close(self) -> None:
        return


class HangingPool(SSHPool):
    """An SSHPool whose servers connect at once but never finish a command."""

    async def connection(self, server: ServerConfig) -> object:  # type: ignore[override]
        return object()

    def runner_for(self, server: ServerConfig) -> HangingRunner:  # type: ignore[override]
        return HangingRunner()


async def test_a_hanging_server_times_out() -> None:
    """A server that never finishes answering becomes a 'timed out' row, not a hang."""
    server = ServerConfig(name="mx", host="192.0.2.1")
    limits = Limits(connect_timeout=0.1, command_timeout=0.1)
    rows = await check_servers(Settings(servers=(server,), limits=limits), HangingPool)
    assert rows == [
        DoctorRow(
            server="mx",
            ok=False,
            route="ssh 192.0.2.1:22",
            reason="timed out: no complete answer within 0.3 s",
        )
    ]


def test_render_doctor_is_an_aligned_table() -> None:
    """The table has a header, one aligned line per server, its files indented under it, and a
    closing count."""
    rows = [
        DoctorRow(
            server="mx1",
            ok=True,
            route="ssh 10.0.0.1:22",
            reason="4 log files readable",
            logs=(
                log_file("/var/log/mail.log.3", at(10, 0, 5), at(11, 0)),
                log_file("/var/log/mail.log.2", at(11, 0), at(12, 0)),
                log_file("/var/log/mail.log.1", at(12, 0), at(13, 0)),
                log_file("/var/log/mail.log", at(13, 0), at(13, 23, 59)),
            ),
        ),
        DoctorRow(
            server="relay-backup",
            ok=False,
            route="ssh 10.0.0.2:22 via bastion",
            reason="unreachable: connection refused by 10.0.0.2 port 22; is sshd running there?",
        ),
    ]
    assert render_doctor(rows).splitlines() == [
        "SERVER        STATUS  FILES  LOGS COVER (UTC)                     ROUTE"
        "                        DETAIL",
        "mx1           ok      4      2024-05-10 00:05 – 2024-05-13 23:59  ssh 10.0.0.1:22"
        "              4 log files readable",
        "    /var/log/mail.log.3  2024-05-10 00:05 – 2024-05-11 00:00",
        "    /var/log/mail.log.2  2024-05-11 00:00 – 2024-05-12 00:00",
        "    /var/log/mail.log.1  2024-05-12 00:00 – 2024-05-13 00:00",
        "    /var/log/mail.log    2024-05-13 00:00 – 2024-05-13 23:59",
        "relay-backup  FAILED  -      -                                    ssh 10.0.0.2:22 via"
        " bastion  unreachable: connection refused by 10.0.0.2 port 22; is sshd running there?",
        "",
        "1 of 2 servers ok",
    ]


def test_render_doctor_marks_unreadable_and_undated_files() -> None:
    """Under a server, an unreadable file says UNREADABLE, an undated first line shows as ?,
    and the server's own span counts readable files only (all in the zone asked for)."""
    row = DoctorRow(
        server="mx2",
        ok=False,
        route="local",
        reason="permission denied: 1 of 3 log files cannot be read by user mailtrace: /l/m.log.2",
        logs=(
            log_file("/l/m.log.2", None, at(11, 10), readable=False),
            log_file("/l/m.log.1", None, at(12, 10)),
            log_file("/l/m.log", at(12, 10, 1), at(13, 21, 30)),
        ),
    )
    lines = render_doctor([row], ZoneInfo("Europe/Berlin")).splitlines()
    assert "LOGS COVER (Europe/Berlin)" in lines[0]
    # the undated file counts from its modification time; the unreadable one not at all
    assert lines[1].startswith(
        "mx2     FAILED  3 (1 unreadable)  2024-05-12 12:00 – 2024-05-13 23:30"
    )
    assert lines[2:5] == [
        "    /l/m.log.2  ? – 2024-05-11 12:00  UNREADABLE",
        "    /l/m.log.1  ? – 2024-05-12 12:00",
        "    /l/m.log    2024-05-12 12:01 – 2024-05-13 23:30",
    ]
    assert lines[5:] == ["", "0 of 1 servers ok"]


async def test_local_server_lists_each_file_with_the_span_it_covers(tmp_path: Path) -> None:
    """A real listing: each log file is in the row, oldest first, with its first line's time
    and its modification time, and the report prints one line per file."""
    lines = {
        "mail.log.1": "May 12 08:00:00 mx postfix/qmgr[900]: 4A1B2C3D4E: removed\n",
        "mail.log": "May 13 09:30:00 mx postfix/qmgr[900]: 5B2C3D4E5F: removed\n",
    }
    written = {"mail.log.1": at(12, 23, 59), "mail.log": at(13, 18, 0)}
    for name, text in lines.items():
        (tmp_path / name).write_text(text)
        os.utime(tmp_path / name, (written[name].timestamp(), written[name].timestamp()))
    server = ServerConfig(name="mx", local=True, logs=(f"{tmp_path}/mail.log*",), year=2024)
    [row] = await check_servers(Settings(servers=(server,)))
    assert row.ok, row
    assert [(f.path, f.first_seen, f.mtime, f.readable) for f in row.logs] == [
        (f"{tmp_path}/mail.log.1", at(12, 8), at(12, 23, 59), True),
        (f"{tmp_path}/mail.log", at(13, 9, 30), at(13, 18), True),
    ]
    assert (row.files, row.first, row.last) == (2, at(12, 8), at(13, 18))
    report = render_doctor([row]).splitlines()
    assert report[2:4] == [
        f"    {tmp_path}/mail.log.1  2024-05-12 08:00 – 2024-05-12 23:59",
        f"    {tmp_path}/mail.log    2024-05-13 09:30 – 2024-05-13 18:00",
    ]


class BrokenPool(SSHPool):
    """An SSHPool with a bug: connecting raises something that is not a mailtrace error."""

    async def connection(self, server: ServerConfig) -> object:  # type: ignore[override]
        raise RuntimeError(f"bug while connecting to {server.name}")


async def test_an_unexpected_error_becomes_a_row_and_spares_the_others(tmp_path: Path) -> None:
    """A check that raises an unexpected exception is a FAILED row naming the error; the other
    servers' rows are still there."""
    log = tmp_path / "maillog"
    log.write_text("May 13 09:30:00 mx postfix/qmgr[900]: 5B2C3D4E5F: removed\n")
    servers = (
        ServerConfig(name="mx", host="192.0.2.1"),
        ServerConfig(name="local", local=True, logs=(str(log),), year=2024),
    )
    rows = await check_servers(Settings(servers=servers), BrokenPool)
    assert rows[0] == DoctorRow(
        server="mx",
        ok=False,
        route="ssh 192.0.2.1:22",
        reason="unexpected error: RuntimeError: bug while connecting to mx",
    )
    assert rows[1].server == "local"
    assert rows[1].ok
    assert rows[1].reason == "1 log files readable"
    assert render_doctor(rows).splitlines()[-1] == "1 of 2 servers ok"


def test_render_doctor_without_servers() -> None:
    """An empty configuration says so instead of printing an empty table."""
    assert render_doctor([]).splitlines()[-1] == "no servers configured"


EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "mailtrace.example.yaml"


def test_example_configuration_is_valid() -> None:
    """The documented example loads, with the bastion route and per-server limits it shows."""
    settings = load_settings(EXAMPLE)
    assert [s.name for s in settings.servers] == ["mx1", "relay2", "bastion"]
    relay2 = settings.server("relay2")
    assert relay2.jump == "bastion"
    assert settings.limits_for(relay2).command_timeout == 300
    assert settings.server("mx1").keys == (str(EXAMPLE.parent / "keys" / "id_ed25519"),)
    assert settings.slack is not None


@pytest.mark.parametrize("model", [Settings, ServerConfig, Limits, SlackConfig])
def test_example_configuration_documents_every_field(model: type[BaseModel]) -> None:
    """Every configuration field appears in the example (commented out or set)."""
    text = EXAMPLE.read_text()
    missing = [name for name in model.model_fields if name != "base_dir" and f"{name}:" not in text]
    assert missing == []


@pytest.mark.sshd
async def test_a_slow_starting_remote_shell_is_named_with_its_cost() -> None:
    """A server where every command first waits (here a ForceCommand that sleeps 0.3 s, as a
    heavy ~/.bashrc would) stays ok, and its row says what each command costs to start."""
    with tempfile.TemporaryDirectory(prefix="mailtrace-slow-") as name:
        root = Path(name)
        client = generate_key(root / "client")
        authorized = root / "authorized_keys"
        authorized.write_text(client.public_line + "\n")
        sshd = start_sshd(
            "slow",
            root / "slow",
            authorized,
            extra_config='ForceCommand sleep 0.3; eval "$SSH_ORIGINAL_COMMAND"\n',
        )
        try:
            known_hosts = root / "known_hosts"
            known_hosts.write_text(sshd.known_hosts_line() + "\n")
            write_rotated_logs(root / "logs", "slow")
            server = ServerConfig(
                name="slow",
                host=sshd.host,
                port=sshd.port,
                keys=(str(client.private),),
                use_agent=False,
                known_hosts=str(known_hosts),
                logs=(f"{root / 'logs'}/mail.log*",),
            )
            settings = Settings(servers=(server,), limits=Limits(command_timeout=20))
            (row,) = await check_servers(settings)
        finally:
            sshd.stop()
    assert row.ok, row
    found = SLOW_START.search(row.reason)
    assert found is not None, row.reason
    assert int(found.group(1)) >= 300
    assert row.reason.startswith("4 log files readable; every remote command takes ")
    assert row.reason.endswith(
        "ms before it runs (a plain shell on a nearby server: a few ms): the login shell's"
        " start-up files, or a long network round trip"
    )
