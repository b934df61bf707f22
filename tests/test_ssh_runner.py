"""SSHPool and SSHRunner against real OpenSSH servers on 127.0.0.1: results, reuse, failures."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import os
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.errors import (
    AuthFailed,
    CommandTimeout,
    ConfigError,
    ConnectFailed,
    HostKeyRejected,
    NoLogFiles,
    SourceError,
)
from bot.settings import ServerConfig, Settings
from bot.sources import commands, grep_commands
from bot.sources.runner import CommandRunner, LocalRunner
from bot.sources.source import LogSource
from bot.sources.ssh import SSHPool
from bot.sources.ssh_connect import PASSPHRASE_ENV
from parsers.models import LogEvent
from tests.sshd import SshCluster, free_port, generate_key

pytestmark = pytest.mark.sshd

NEEDLE = "sender3@example.net"
QMGR_LINE = (
    "May {day} 10:00:00 mx1 postfix/qmgr[900]: {qid}: from=<{sender}>, size=1500, nrcpt=1 "
    "(queue active)\n"
)


async def lines_of(runner: CommandRunner, command: str) -> list[str]:
    return [line async for line in runner.stream(command)]


async def search(source: LogSource, patterns: list[str]) -> list[LogEvent]:
    """What the search layer does with one source: list its files, grep them all."""
    files = await source.list_files()
    return [event async for event in source.grep(files, patterns)]


def local_source(server: ServerConfig, settings: Settings) -> LogSource:
    return LogSource(server, LocalRunner(server.name), settings.limits_for(server))


def ssh_source(pool: SSHPool, server: ServerConfig) -> LogSource:
    return LogSource(server, pool.runner_for(server), pool.settings.limits_for(server))


async def search_each(
    pool: SSHPool, patterns: list[str]
) -> dict[str, list[LogEvent] | BaseException]:
    """Every configured server at once; one failure must not hide the others (like the search)."""
    servers = pool.settings.servers
    results = await asyncio.gather(
        *(search(ssh_source(pool, s), patterns) for s in servers), return_exceptions=True
    )
    return {s.name: r for s, r in zip(servers, results, strict=True)}


def remote_processes(marker: str) -> str:
    """Processes whose command line holds `marker` (the sshd's children run on this machine)."""
    found = subprocess.run(["pgrep", "-af", marker], capture_output=True, text=True, check=False)
    return "\n".join(line for line in found.stdout.splitlines() if "pgrep" not in line)


def wait_gone(marker: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while (left := remote_processes(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


@contextlib.asynccontextmanager
async def pool_for(
    cluster: SshCluster, *servers: ServerConfig, **limits: float
) -> AsyncIterator[SSHPool]:
    async with SSHPool(cluster.settings(*servers, **limits)) as pool:
        yield pool


@pytest.fixture
async def mx2_events(sshd_cluster: SshCluster) -> list[LogEvent]:
    """mx2's events for NEEDLE read locally: what a healthy server must return in full."""
    server = sshd_cluster.server_config("mx2")
    return await search(local_source(server, sshd_cluster.settings(server)), [NEEDLE])


async def test_lists_rotated_and_gzipped_files_like_a_local_run(sshd_cluster: SshCluster) -> None:
    """Over SSH the files, sizes, mtimes and first-line dates equal those of a local run."""
    server = sshd_cluster.server_config("mx1")
    async with pool_for(sshd_cluster, server) as pool:
        remote = await ssh_source(pool, server).list_files()
    local = await local_source(server, pool.settings).list_files()
    assert remote == local
    assert [Path(f.path).name for f in remote] == [
        "mail.log.3.gz",
        "mail.log.2.gz",
        "mail.log.1",
        "mail.log",
    ]
    assert all(f.first_seen is not None and f.first_seen < f.mtime for f in remote)


async def test_grep_over_ssh_yields_the_same_events_as_locally(sshd_cluster: SshCluster) -> None:
    """Grepping through sshd gives exactly the events the same command gives on this machine."""
    server = sshd_cluster.server_config("mx1")
    async with pool_for(sshd_cluster, server) as pool:
        remote = await search(ssh_source(pool, server), [NEEDLE])
    local = await search(local_source(server, pool.settings), [NEEDLE])
    assert remote == local
    assert {Path(e.path or "").name for e in remote} == {
        "mail.log",
        "mail.log.1",
        "mail.log.2.gz",
        "mail.log.3.gz",
    }
    assert all(e.sender == NEEDLE for e in remote)


async def test_jump_host_by_server_name(sshd_cluster: SshCluster) -> None:
    """A server behind a configured bastion is reached through it and returns its full results."""
    bastion = sshd_cluster.server_config("bastion")
    mx2 = sshd_cluster.server_config("mx2", jump="bastion")
    before = sshd_cluster["bastion"].log_text()
    async with pool_for(sshd_cluster, bastion, mx2) as pool:
        remote = await search(ssh_source(pool, mx2), [NEEDLE])
        assert pool.hop_for(mx2).via == pool.hop_for(bastion)
    local = await search(local_source(mx2, pool.settings), [NEEDLE])
    assert remote == local
    assert remote
    forwarded = sshd_cluster["bastion"].log_text()[len(before) :]
    assert f"target 127.0.0.1 port {sshd_cluster['mx2'].port}" in forwarded


async def test_jump_host_by_address_shares_one_bastion_connection(sshd_cluster: SshCluster) -> None:
    """`user@host:port` jumps work, and two servers behind one bastion share its connection."""
    bastion = sshd_cluster["bastion"]
    spec = f"{sshd_cluster.login}@127.0.0.1:{bastion.port}"
    mx1 = sshd_cluster.server_config("mx1", jump=spec)
    mx2 = sshd_cluster.server_config("mx2", jump=spec)
    logins = bastion.accepted_logins()
    async with pool_for(sshd_cluster, mx1, mx2) as pool:
        results = await search_each(pool, [NEEDLE])
    assert all(isinstance(r, list) and r for r in results.values())
    assert bastion.accepted_logins() == logins + 1


async def test_bastion_failure_names_the_bastion(sshd_cluster: SshCluster) -> None:
    """When the bastion is down, the server behind it fails with a message naming the bastion."""
    port = free_port()
    mx2 = sshd_cluster.server_config("mx2", jump=f"{sshd_cluster.login}@127.0.0.1:{port}")
    async with pool_for(sshd_cluster, mx2) as pool:
        with pytest.raises(ConnectFailed) as caught:
            await pool.connection(mx2)
    assert str(caught.value) == (
        f"mx2: unreachable: jump host {sshd_cluster.login}@127.0.0.1:{port} (127.0.0.1 port {port}): "
        f"connection refused by 127.0.0.1 port {port}; is sshd running there?"
    )


async def test_bastion_host_key_is_checked_too(sshd_cluster: SshCluster, tmp_path: Path) -> None:
    """A configured bastion with an unknown host key stops the server behind it, and says so."""
    lines = [sshd_cluster["mx2"].known_hosts_line()]  # mx2 known, the bastion not
    known = sshd_cluster.write_known_hosts(tmp_path / "known_hosts", lines)
    bastion = sshd_cluster.server_config("bastion", known_hosts=str(known))
    mx2 = sshd_cluster.server_config("mx2", jump="bastion")
    port = sshd_cluster["bastion"].port
    async with pool_for(sshd_cluster, bastion, mx2) as pool:
        with pytest.raises(HostKeyRejected) as caught:
            await pool.connection(mx2)
    assert str(caught.value) == (
        f"mx2: host key not verified: jump host bastion (127.0.0.1 port {port}): "
        f"not in known_hosts or changed; check known_hosts for [127.0.0.1]:{port}"
    )


def test_jump_host_loops_and_bad_specs_are_configuration_errors(sshd_cluster: SshCluster) -> None:
    """Jump hosts that go round in a circle, or a malformed user@host:port, are refused."""
    a = sshd_cluster.server_config("a", server="mx1", jump="b")
    b = sshd_cluster.server_config("b", server="mx2", jump="a")
    pool = SSHPool(sshd_cluster.settings(a, b))
    with pytest.raises(ConfigError, match="jump hosts go round in a circle: a -> b -> a"):
        pool.hop_for(a)
    bad = sshd_cluster.server_config("c", server="mx1", jump="user@host:notaport")
    with pytest.raises(ConfigError, match="the port must be a number"):
        SSHPool(sshd_cluster.settings(bad)).hop_for(bad)
    v6 = sshd_cluster.server_config("d", server="mx1", jump="ops@[2001:db8::7]:2222")
    via = SSHPool(sshd_cluster.settings(v6)).hop_for(v6).via
    assert via is not None
    assert (via.user, via.host, via.port, via.address) == (
        "ops",
        "2001:db8::7",
        2222,
        "[2001:db8::7]:2222",
    )


async def test_two_queries_reuse_one_connection(sshd_cluster: SshCluster) -> None:
    """Listing and two greps open one SSH connection, not three."""
    server = sshd_cluster.server_config("mx2")
    logins = sshd_cluster["mx2"].accepted_logins()
    async with pool_for(sshd_cluster, server) as pool:
        source = ssh_source(pool, server)
        await search(source, [NEEDLE])
        first = await pool.connection(server)
        await search(source, ["rcpt4@example.org"])
        assert await pool.connection(server) is first
    assert sshd_cluster["mx2"].accepted_logins() == logins + 1


async def test_reconnects_after_the_connection_was_lost(sshd_cluster: SshCluster) -> None:
    """A connection that died between queries is replaced by a new one on the next query."""
    server = sshd_cluster.server_config("mx2")
    logins = sshd_cluster["mx2"].accepted_logins()
    async with pool_for(sshd_cluster, server) as pool:
        runner = pool.runner_for(server)
        assert await lines_of(runner, "echo one") == ["one"]
        conn = await pool.connection(server)
        conn.abort()
        await conn.wait_closed()  # the pool sees it closed: the next command reconnects
        assert await lines_of(runner, "echo two") == ["two"]
    assert sshd_cluster["mx2"].accepted_logins() == logins + 2


async def test_at_most_max_sessions_channels_run_at_once(sshd_cluster: SshCluster) -> None:
    """With max_sessions=2, six concurrent commands run two at a time on one connection."""
    server = sshd_cluster.server_config("mx2")
    async with pool_for(sshd_cluster, server, max_sessions=2) as pool:
        runner = pool.runner_for(server)
        command = "date +%s.%N; sleep 0.3; date +%s.%N"
        spans = await asyncio.gather(*(lines_of(runner, command) for _ in range(6)))
    events = sorted([(float(a), 1) for a, _ in spans] + [(float(b), -1) for _, b in spans])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    assert peak == 2


async def test_early_exit_closes_the_channel_promptly(sshd_cluster: SshCluster) -> None:
    """A consumer that stops reading gets control back at once and its session slot is freed."""
    server = sshd_cluster.server_config("mx2")
    marker = f"2.{os.getpid()}1"
    async with pool_for(sshd_cluster, server, max_sessions=1) as pool:
        runner = pool.runner_for(server)
        started = time.monotonic()
        async with contextlib.aclosing(runner.stream(f"echo ready; sleep {marker}")) as lines:
            async for line in lines:
                assert line == "ready"
                break
        assert time.monotonic() - started < 2
        # The slot comes back when sshd closes the channel: at the latest when the remote ends.
        assert await asyncio.wait_for(lines_of(runner, "echo next"), 15) == ["next"]
    assert wait_gone(marker, 5) == ""


async def test_early_exit_ends_the_remote_command_for_a_normal_user(
    sshd_cluster: SshCluster,
) -> None:
    """For a non-root login sshd delivers the TERM we send, so the remote command ends at once."""
    if sshd_cluster.test_user is None:
        pytest.skip("no unprivileged test user (needs root and useradd)")
    server = sshd_cluster.server_config("mx2", user=sshd_cluster.test_user)
    marker = f"9.{os.getpid()}3"
    async with pool_for(sshd_cluster, server) as pool:
        runner = pool.runner_for(server)
        command = commands.wrap(f"echo ready; sleep {marker}", 60)
        async with contextlib.aclosing(runner.stream(command)) as lines:
            async for _line in lines:
                break
        assert wait_gone(marker, 3) == ""


# --- the failure matrix: each failing server beside a healthy mx2 ---------------------------


async def expect_failure(
    cluster: SshCluster, broken: ServerConfig, mx2_events: list[LogEvent], **limits: float
) -> SourceError:
    """Search `broken` and mx2 together; mx2 must come back complete, `broken` with an error."""
    mx2 = cluster.server_config("mx2")
    async with pool_for(cluster, broken, mx2, **limits) as pool:
        results = await search_each(pool, [NEEDLE])
    assert mx2_events
    assert results["mx2"] == mx2_events
    error = results[broken.name]
    assert isinstance(error, SourceError), error
    return error


async def test_unreachable_server(sshd_cluster: SshCluster, mx2_events: list[LogEvent]) -> None:
    """A closed port is 'unreachable: connection refused', and mx2 still answers in full."""
    port = free_port()
    broken = sshd_cluster.server_config("mx1", port=port)
    error = await expect_failure(sshd_cluster, broken, mx2_events)
    assert isinstance(error, ConnectFailed)
    assert str(error) == (
        f"mx1: unreachable: connection refused by 127.0.0.1 port {port}; is sshd running there?"
    )


async def test_unknown_host_name(sshd_cluster: SshCluster, mx2_events: list[LogEvent]) -> None:
    """A host name that does not resolve says so."""
    broken = sshd_cluster.server_config("mx1", host="no-such-host.invalid")
    error = await expect_failure(sshd_cluster, broken, mx2_events)
    assert isinstance(error, ConnectFailed)
    assert str(error) == "mx1: unreachable: cannot resolve host name no-such-host.invalid"


async def test_server_that_never_answers(
    sshd_cluster: SshCluster, mx2_events: list[LogEvent]
) -> None:
    """A port that accepts TCP but never speaks SSH times out after connect_timeout."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        broken = sshd_cluster.server_config("mx1", port=port)
        error = await expect_failure(sshd_cluster, broken, mx2_events, connect_timeout=1)
    assert isinstance(error, ConnectFailed)
    assert str(error) == f"mx1: unreachable: no SSH answer from 127.0.0.1 port {port} within 1 s"


async def test_key_not_authorized(sshd_cluster: SshCluster, mx2_events: list[LogEvent]) -> None:
    """A key the server does not know is 'authentication failed', naming the user."""
    broken = sshd_cluster.server_config("mx1", keys=(str(sshd_cluster.stranger_key.private),))
    error = await expect_failure(sshd_cluster, broken, mx2_events)
    assert isinstance(error, AuthFailed)
    assert str(error) == (
        "mx1: authentication failed: 127.0.0.1 accepted none of the bot's keys for user "
        f"{sshd_cluster.login}; "
        "check that user's authorized_keys there"
    )


async def test_changed_host_key(
    sshd_cluster: SshCluster, mx2_events: list[LogEvent], tmp_path: Path
) -> None:
    """A known_hosts entry with another key for the address is refused, never accepted."""
    mx1 = sshd_cluster["mx1"]
    wrong = sshd_cluster.write_known_hosts(
        tmp_path / "known_hosts", [mx1.known_hosts_line(sshd_cluster["mx2"].host_key)]
    )
    broken = sshd_cluster.server_config("mx1", known_hosts=str(wrong))
    error = await expect_failure(sshd_cluster, broken, mx2_events)
    assert isinstance(error, HostKeyRejected)
    assert str(error) == (
        "mx1: host key not verified: not in known_hosts or changed; "
        f"check known_hosts for [127.0.0.1]:{mx1.port}"
    )


async def test_unknown_host_key(sshd_cluster: SshCluster, tmp_path: Path) -> None:
    """A server missing from known_hosts is refused too (no trust on first use)."""
    empty = sshd_cluster.write_known_hosts(tmp_path / "known_hosts", [])
    server = sshd_cluster.server_config("mx1", known_hosts=str(empty))
    async with pool_for(sshd_cluster, server) as pool:
        with pytest.raises(HostKeyRejected, match="not in known_hosts or changed"):
            await pool.connection(server)


async def test_insecure_mode_connects_and_warns_loudly(
    sshd_cluster: SshCluster, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """insecure_no_host_key_check skips the check and logs a WARNING on every connect."""
    empty = sshd_cluster.write_known_hosts(tmp_path / "known_hosts", [])
    server = sshd_cluster.server_config(
        "mx2", known_hosts=str(empty), insecure_no_host_key_check=True
    )
    caplog.set_level(logging.WARNING, logger="bot.sources.ssh_connect")
    async with pool_for(sshd_cluster, server) as pool:
        assert await lines_of(pool.runner_for(server), "echo hi") == ["hi"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "HOST KEY CHECK DISABLED for mx2" in warnings[0].getMessage()


async def test_command_timeout_leaves_no_remote_process(
    sshd_cluster: SshCluster, mx2_events: list[LogEvent]
) -> None:
    """A command past its time limit is 'timed out', and nothing of it stays on the server."""
    marker = f"30.{os.getpid()}7"
    server = sshd_cluster.server_config("mx1")
    mx2 = sshd_cluster.server_config("mx2")
    async with pool_for(sshd_cluster, server, mx2, command_timeout=1) as pool:
        slow = lines_of(pool.runner_for(server), commands.wrap(f"sleep {marker}", 1))
        healthy = search(ssh_source(pool, mx2), [NEEDLE])
        error, events = await asyncio.gather(slow, healthy, return_exceptions=True)
    assert events == mx2_events
    assert isinstance(error, CommandTimeout)
    assert str(error) == "mx1: timed out: the search command ran past its time limit"
    assert wait_gone(marker, 3) == ""


async def test_unreadable_log_file(sshd_cluster: SshCluster) -> None:
    """A log file the login user cannot read is listed as unreadable and never grepped."""
    if sshd_cluster.test_user is None:
        pytest.skip("no unprivileged test user (needs root and useradd)")
    directory = sshd_cluster.root / "logs" / "mixed"
    directory.mkdir(exist_ok=True)
    directory.chmod(0o755)
    (directory / "mail.log").write_text(QMGR_LINE.format(day=13, qid="4A1B2C3D4E", sender=NEEDLE))
    (directory / "mail.log").chmod(0o644)
    secret = directory / "mail.log.1"
    secret.write_text(QMGR_LINE.format(day=12, qid="5B2C3D4E5F", sender=NEEDLE))
    secret.chmod(0o600)
    server = sshd_cluster.server_config(
        "mx1", user=sshd_cluster.test_user, logs=(f"{directory}/mail.log*",)
    )
    async with pool_for(sshd_cluster, server) as pool:
        source = ssh_source(pool, server)
        files = await source.list_files()
        assert {Path(f.path).name: f.readable for f in files} == {
            "mail.log": True,
            "mail.log.1": False,
        }
        events = [e async for e in source.grep(files, [NEEDLE])]
        assert [e.queue_id for e in events] == ["4A1B2C3D4E"]
        # asked to grep it anyway (it became unreadable after listing), the command says so
        output = await lines_of(
            pool.runner_for(server), grep_commands.grep_command([str(secret)], ["x"])
        )
    assert output == [f"!unreadable\t{secret}"]
    assert grep_commands.describe_problem(output[0]) == (
        f"{secret}: cannot be read (permission denied, or rotated away since it was listed)"
    )


async def test_no_log_files(sshd_cluster: SshCluster, mx2_events: list[LogEvent]) -> None:
    """A glob that matches nothing is 'no log files', naming the glob."""
    glob = f"{sshd_cluster.root}/logs/mx1/nothing*"
    broken = sshd_cluster.server_config("mx1", logs=(glob,))
    error = await expect_failure(sshd_cluster, broken, mx2_events)
    assert isinstance(error, NoLogFiles)
    assert str(error) == f"mx1: no log files: nothing matches {glob}"


async def test_corrupt_archive_is_a_problem_not_a_failure(sshd_cluster: SshCluster) -> None:
    """A damaged .gz is reported as a problem; the server's other files are still searched."""
    directory = sshd_cluster.root / "logs" / "corrupt"
    directory.mkdir(exist_ok=True)
    (directory / "mail.log").write_text(QMGR_LINE.format(day=13, qid="4A1B2C3D4E", sender=NEEDLE))
    broken_gz = directory / "mail.log.1.gz"
    broken_gz.write_bytes(gzip.compress(b"May 12 10:00:00 mx1 postfix/qmgr[9]: x\n" * 50)[:60])
    server = sshd_cluster.server_config("mx1", logs=(f"{directory}/mail.log*",))
    async with pool_for(sshd_cluster, server) as pool:
        source = ssh_source(pool, server)
        problems: list[str] = []
        events = [
            e async for e in source.grep(await source.list_files(), [NEEDLE], problems=problems)
        ]
    assert [e.queue_id for e in events] == ["4A1B2C3D4E"]
    assert problems == [f"{broken_gz}: could not be decompressed (corrupt, or still being written)"]


async def test_encrypted_key_needs_its_passphrase(
    sshd_cluster: SshCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An encrypted key works with the passphrase from the environment; errors never show it."""
    passphrase = "correct horse battery staple"
    key = generate_key(tmp_path / "encrypted", passphrase)
    authorized = Path(sshd_cluster.root / "authorized_keys")
    original = authorized.read_text()
    authorized.write_text(original + key.public_line + "\n")
    try:
        server = sshd_cluster.server_config("mx2", keys=(str(key.private),))
        monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
        async with pool_for(sshd_cluster, server) as pool:
            with pytest.raises(AuthFailed) as missing:
                await pool.connection(server)
        assert str(missing.value) == (
            f"mx2: authentication failed: key file {key.private} is encrypted; set {PASSPHRASE_ENV}"
        )
        monkeypatch.setenv(PASSPHRASE_ENV, "wrong " + passphrase)
        async with pool_for(sshd_cluster, server) as pool:
            with pytest.raises(AuthFailed) as wrong:
                await pool.connection(server)
        assert str(wrong.value) == (
            f"mx2: authentication failed: cannot decrypt key file {key.private}: "
            f"wrong passphrase in {PASSPHRASE_ENV}"
        )
        assert passphrase not in repr(wrong.value.__cause__)
        monkeypatch.setenv(PASSPHRASE_ENV, passphrase)
        async with pool_for(sshd_cluster, server) as pool:
            assert await lines_of(pool.runner_for(server), "echo in") == ["in"]
    finally:
        authorized.write_text(original)


async def test_lost_connection_mid_command(sshd_cluster: SshCluster) -> None:
    """A connection that drops while a command runs is reported as lost, not as 'no match'."""
    server = sshd_cluster.server_config("mx2")

    async def read_until_dropped(pool: SSHPool) -> None:
        async with contextlib.aclosing(pool.runner_for(server).stream("echo a; sleep 5")) as lines:
            async for _line in lines:
                (await pool.connection(server)).abort()

    async with pool_for(sshd_cluster, server) as pool:
        with pytest.raises(ConnectFailed) as caught:
            await read_until_dropped(pool)
    assert str(caught.value) == "mx2: unreachable: the SSH connection was lost during the search"


async def test_tools_are_probed_again_on_a_new_connection(sshd_cluster: SshCluster) -> None:
    """The rg/pigz/zstd probe runs with the first listing of each connection: once while the
    connection lasts, and again after the server went away and the pool reconnected."""
    server = sshd_cluster.server_config("mx1")
    recorder = sshd_cluster["mx1"]
    async with pool_for(sshd_cluster, server) as pool:
        source = ssh_source(pool, server)
        before = len(recorder.recorded())
        for _ in range(2):
            await search(source, [NEEDLE])
        probes = [c for c in recorder.recorded()[before:] if "for t in rg pigz zstd" in c]
        assert len(probes) == 1
        assert source.tools is not None
        conn = await pool.connection(server)
        conn.abort()
        await conn.wait_closed()  # the pool sees it closed: the next command reconnects
        await search(source, [NEEDLE])
        probes = [c for c in recorder.recorded()[before:] if "for t in rg pigz zstd" in c]
    assert len(probes) == 2
