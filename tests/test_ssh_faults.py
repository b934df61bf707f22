"""Faults of real SSH servers during whole searches: a grep that hangs, a connection dropped in
the middle of a grep's output, sshd restarted between two queries, and sshd refusing a session
because its MaxSessions is smaller than the bot's max_sessions."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.query import Query, parse_query
from bot.result import SearchResult
from bot.search import run_search
from bot.settings import Limits, ServerConfig, Settings
from bot.sources.factory import build_sources
from bot.sources.ssh import SSHPool
from tests.sshd import (
    HOST,
    SSHD,
    KeyPair,
    Sshd,
    generate_key,
    require_sshd,
    start_sshd,
    write_rotated_logs,
)

pytestmark = pytest.mark.sshd

BOUND_S = 90.0  # any one search; a hang fails the test instead of stalling CI

# The server's grep (and ripgrep), behind a ForceCommand that puts this directory first on PATH: while the flag
# file exists it stalls (like a grep on a hung NFS mount), else it is the real grep. The `sleep`
# carries a number unique to this run so the process list can be searched for it.
SLOW_GREP = """#!/bin/sh
if [ -e {flag} ]; then
  [ -n "{started}" ] && : > {started}
  sleep {sleep}
fi
exec {real} "$@"
"""
FORCE = """#!/bin/sh
PATH={bin}:$PATH; export PATH
exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"
"""


@dataclass
class Servers:
    root: Path
    client: KeyPair
    known_hosts: Path
    sshd: dict[str, Sshd]
    hang_flag: Path  # while it exists, mx1's grep stalls
    grep_started: Path  # touched by mx1's grep when it stalls
    sleep_marker: str  # the stalled grep's `sleep` argument, unique to this run

    def config(self, name: str) -> ServerConfig:
        sshd = self.sshd[name]
        return ServerConfig(
            name=name,
            host=sshd.host,
            port=sshd.port,
            keys=(str(self.client.private),),
            use_agent=False,
            known_hosts=str(self.known_hosts),
            logs=(str(self.root / "logs" / name) + "/mail.log*",),
        )

    def settings(self, *names: str, **limits: float) -> Settings:
        base: dict[str, float] = {"connect_timeout": 5, "command_timeout": 20}
        return Settings(
            default_days=None,
            servers=tuple(self.config(n) for n in names),
            limits=Limits(**{**base, **limits}),
        )


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    """mx1 (its grep can be made to stall), mx2 (healthy) and mx3 (sshd MaxSessions 1)."""
    require_sshd()
    with tempfile.TemporaryDirectory(prefix="mailtrace-faults-") as name:
        root = Path(name)
        client = generate_key(root / "client")
        authorized = root / "authorized_keys"
        authorized.write_text(client.public_line + "\n")
        slow_bin = root / "slowbin"
        slow_bin.mkdir()
        marker = f"{600 + os.getpid() % 300}.{time.time_ns() % 10**6:06d}"
        flag, started = root / "hang", root / "grep-started"
        # the search tools: grep, and ripgrep where the server has it (it searches plain files)
        for tool in ("grep", "rg"):
            real = shutil.which(tool)
            if real is None:
                continue
            fake = SLOW_GREP.format(flag=flag, started=started, sleep=marker, real=real)
            (slow_bin / tool).write_text(fake)
            (slow_bin / tool).chmod(0o755)
        force = root / "force.sh"
        force.write_text(FORCE.format(bin=slow_bin))
        force.chmod(0o755)
        sshds: dict[str, Sshd] = {}
        try:
            sshds["mx1"] = start_sshd(
                "mx1", root / "mx1", authorized, extra_config=f"ForceCommand {force}\n"
            )
            sshds["mx2"] = start_sshd("mx2", root / "mx2", authorized)
            sshds["mx3"] = start_sshd(
                "mx3", root / "mx3", authorized, log_level="DEBUG1", max_sessions=1
            )
            for host in sshds:
                write_rotated_logs(root / "logs" / host, host)
            known_hosts = root / "known_hosts"
            known_hosts.write_text("".join(s.known_hosts_line() + "\n" for s in sshds.values()))
            yield Servers(root, client, known_hosts, sshds, flag, started, marker)
        finally:
            flag.unlink(missing_ok=True)
            for sshd in sshds.values():
                sshd.stop()


def query_yesterday(needle: str = "sender3@example.net") -> tuple[Query, datetime]:
    now = datetime.now(UTC)
    yesterday = (now - timedelta(days=1)).date().isoformat()
    return parse_query(f"{needle} {yesterday}", now=now, zone=ZoneInfo("UTC")), now


async def search(settings: Settings, pool: SSHPool) -> SearchResult:
    query, now = query_yesterday()
    async with asyncio.timeout(BOUND_S):
        return await run_search(query, settings, list(build_sources(settings, pool)), now=now)


def failures_of(result: SearchResult) -> dict[str, str]:
    return {f.server: f"{f.reason}: {f.detail}" for f in result.failures}


def processes_with(marker: str) -> list[str]:
    """Every process on this machine (the sshds' sessions run here) whose command line holds
    `marker`."""
    found = subprocess.run(["pgrep", "-af", marker], capture_output=True, text=True, check=False)
    return [line for line in found.stdout.splitlines() if "pgrep" not in line]


def wait_until_gone(marker: str, timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    while (left := processes_with(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def session_processes(sshd: Sshd) -> list[int]:
    """The PIDs of the per-connection sshd processes under this listening sshd."""
    found = subprocess.run(
        ["pgrep", "-P", str(sshd.process.pid)], capture_output=True, text=True, check=False
    )
    return [int(pid) for pid in found.stdout.split()]


def restart(sshd: Sshd) -> None:
    """Stop this sshd and its sessions (as a reboot or a full service restart does) and start it
    again on the same port with the same host key."""
    for pid in session_processes(sshd):
        os.kill(pid, signal.SIGKILL)  # children of the sshd this test started
    sshd.stop()
    config = sshd.directory / "sshd_config"
    sshd.log.write_text("")
    sshd.process = subprocess.Popen(
        [str(SSHD), "-D", "-e", "-f", str(config), "-E", str(sshd.log)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while "Server listening on" not in sshd.log.read_text(errors="replace"):
        assert sshd.process.poll() is None, sshd.log.read_text(errors="replace")
        assert time.monotonic() < deadline, f"sshd did not come back on {HOST}:{sshd.port}"
        time.sleep(0.05)


async def test_a_stalled_grep_fails_its_server_only_and_leaves_nothing_running(
    servers: Servers,
) -> None:
    """mx1's grep stalls: the search's time limit ends it, the answer names mx1 and has mx2's
    mail in full, and no stalled grep is left running on mx1 afterwards."""
    settings = servers.settings("mx1", "mx2", command_timeout=2, query_timeout=30)
    servers.hang_flag.touch()
    try:
        async with SSHPool(settings) as pool:
            result = await search(settings, pool)
    finally:
        servers.hang_flag.unlink()
    assert servers.grep_started.exists()  # the stall really happened on mx1
    failures = failures_of(result)
    assert list(failures) == ["mx1"]
    assert "time" in failures["mx1"]
    assert [c.server for c in result.searched if c.server == "mx2"] == ["mx2"]
    assert {m.host for m in result.messages} == {"mx2"}
    # The remote `timeout -k 5` ends the whole process group on the server, whoever waits.
    assert wait_until_gone(servers.sleep_marker, 10) == []


async def test_a_connection_dropped_mid_grep_is_a_lost_server_and_the_next_query_reconnects(
    servers: Servers,
) -> None:
    """The sshd session process dies while mx1's grep runs: the answer names mx1 as lost (not
    'nothing found'), and the next query on the same pool reconnects and answers in full."""
    settings = servers.settings("mx1", "mx2")
    servers.grep_started.unlink(missing_ok=True)
    async with SSHPool(settings) as pool:
        servers.hang_flag.touch()
        try:
            searching = asyncio.ensure_future(search(settings, pool))
            async with asyncio.timeout(30):
                while not servers.grep_started.exists():
                    await asyncio.sleep(0.05)
            for pid in session_processes(servers.sshd["mx1"]):
                os.kill(pid, signal.SIGKILL)  # children of the sshd this test started
            dropped = await searching
        finally:
            servers.hang_flag.unlink()
        again = await search(settings, pool)
    assert list(failures_of(dropped)) == ["mx1"]
    assert "lost" in failures_of(dropped)["mx1"]
    assert failures_of(again) == {}
    assert {m.host for m in again.messages} == {"mx1", "mx2"}
    wait_until_gone(servers.sleep_marker, 10)


async def test_sshd_restarted_between_two_queries_is_reconnected_without_an_error(
    servers: Servers,
) -> None:
    """The pooled connection to mx2 goes stale when its sshd restarts: the next query connects
    again and answers in full, with no failure shown."""
    settings = servers.settings("mx2")
    async with SSHPool(settings) as pool:
        first = await search(settings, pool)
        restart(servers.sshd["mx2"])
        second = await search(settings, pool)
    assert failures_of(first) == {}
    assert failures_of(second) == {}
    assert second.messages == first.messages
    assert servers.sshd["mx2"].accepted_logins() == 1  # a new login after the restart


async def test_a_refused_session_is_retried_until_a_slot_is_free(servers: Servers) -> None:
    """mx3's sshd allows one session per connection while the bot allows three: sshd refuses
    the extra channel opens, the bot retries them after short pauses, and no search loses mx3."""
    settings = servers.settings("mx3", max_sessions=3)
    async with SSHPool(settings) as pool:
        results = await asyncio.gather(*(search(settings, pool) for _ in range(3)))
    assert [failures_of(r) for r in results] == [{}, {}, {}]
    assert all(r.messages for r in results)
    # the situation did arise: sshd itself refused sessions
    assert "no more sessions" in servers.sshd["mx3"].log_text()
