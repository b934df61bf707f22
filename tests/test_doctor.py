"""`mailtrace doctor` against real sshd servers: one honest row per server, whatever breaks."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import BaseModel

from bot.doctor import DoctorRow, check_servers, render_doctor
from bot.settings import Limits, ServerConfig, Settings, SlackConfig, load_settings
from bot.sources.ssh import SSHPool
from tests.sshd import SshCluster, free_port


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


@pytest.mark.sshd
async def test_every_failure_gets_its_own_sentence(
    sshd_cluster: SshCluster, tmp_path: Path, silent_port: int, unreadable_logs: Path
) -> None:
    """Each broken server gets a row saying why; the healthy ones report files and span."""
    cluster = sshd_cluster
    closed = free_port()
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
        cluster.server_config("journal", server="mx1", source="journald"),
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
        assert row[name].reason == "4 log files readable"
        assert row[name].first is not None
        assert row[name].last is not None
        assert (row[name].last - row[name].first).days == 3
    assert row["mx2"].route == f"ssh {cluster.login}@127.0.0.1:{cluster['mx2'].port} via bastion"
    assert row["local"].route == "local"

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
        "journal": "journald sources are not supported yet; point `logs` at the log files",
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


class HangingRunner:
    """A runner whose command never answers."""

    name = "hang"

    async def stream(self, command: str) -> AsyncIterator[str]:
        await asyncio.sleep(3600)
        yield command

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
    """The table has a header, one aligned line per server and a closing count."""
    rows = [
        DoctorRow(
            server="mx1",
            ok=True,
            route="ssh 10.0.0.1:22",
            reason="4 log files readable",
            files=4,
            first=datetime(2024, 5, 10, 0, 5, tzinfo=UTC),
            last=datetime(2024, 5, 13, 23, 59, tzinfo=UTC),
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
        "relay-backup  FAILED  -      -                                    ssh 10.0.0.2:22 via"
        " bastion  unreachable: connection refused by 10.0.0.2 port 22; is sshd running there?",
        "",
        "1 of 2 servers ok",
    ]


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
