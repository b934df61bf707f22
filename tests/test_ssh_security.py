"""Hostile search strings through a real sshd: they arrive intact, run nothing, match literally."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.settings import ServerConfig
from bot.sources import grep_commands
from bot.sources.runner import CommandRunner
from bot.sources.source import LogSource
from bot.sources.ssh import SSHPool
from tests.sshd import SshCluster

pytestmark = pytest.mark.sshd

MARKER = f"/tmp/mailtrace-hostile-{os.getpid()}"

HOSTILE = [
    f"; touch {MARKER}",
    f"$(touch {MARKER})",
    f"`touch {MARKER}`",
    f"'; touch {MARKER}; echo '",
    f'"; touch {MARKER}; echo "',
    f"| touch {MARKER}",
    f"&& touch {MARKER} &&",
    f"> {MARKER}",
    "it's a \"quoted\" 'subject'",
    "-f/etc/shadow",
    "*",
    "--help",
    "$HOME ${PATH} %s %n \\n \\",
    "long-" + "x" * 5000,
    "café crème é",
    "📮 parcel 🚚",
]


def log_lines() -> list[str]:
    """One line per hostile text inside an otherwise ordinary Postfix line, plus decoys."""
    lines = [
        f"May 13 10:00:{i:02d} mx1 postfix/cleanup[77]: 4A1B2C3D{i:02X}: warning: header "
        f"Subject: {text} from client.example.net[192.0.2.7]; from=<a@example.net>"
        for i, text in enumerate(HOSTILE)
    ]
    lines += [
        "May 13 11:00:00 mx1 postfix/qmgr[900]: 5C6D7E8F90: from=<touch@example.net>, size=1, "
        "nrcpt=1 (queue active)",
        "May 13 11:00:01 mx1 postfix/smtpd[81]: connect from help.example.net[192.0.2.9]",
        "May 13 11:00:02 mx1 postfix/smtpd[81]: disconnect from shadow.example.net[192.0.2.10]",
    ]
    return lines


@pytest.fixture(scope="module")
def hostile_logs(sshd_cluster: SshCluster) -> Path:
    directory = sshd_cluster.root / "logs" / "hostile"
    directory.mkdir(exist_ok=True)
    path = directory / "mail.log"
    path.write_text("\n".join(log_lines()) + "\n", encoding="utf-8")
    return path


@pytest.fixture
async def pool(sshd_cluster: SshCluster, hostile_logs: Path) -> AsyncIterator[SSHPool]:
    server = sshd_cluster.server_config("mx1", logs=(str(hostile_logs),))
    async with SSHPool(sshd_cluster.settings(server)) as pool:
        yield pool


class SpyRunner:
    """Passes commands on to a real runner and keeps each command line it was given."""

    def __init__(self, runner: CommandRunner) -> None:
        self.name = runner.name
        self.runner = runner
        self.sent: list[str] = []

    def stream(self, command: str) -> AsyncIterator[str]:
        self.sent.append(command)
        return self.runner.stream(command)

    def batches(self, command: str) -> AsyncIterator[list[str]]:
        self.sent.append(command)
        return self.runner.batches(command)

    async def close(self) -> None:
        await self.runner.close()


def mx1(pool: SSHPool) -> ServerConfig:
    return pool.settings.server("mx1")


@pytest.mark.parametrize("pattern", HOSTILE, ids=lambda p: repr(p[:24]))
async def test_hostile_pattern_arrives_intact_and_matches_literally(
    pattern: str, pool: SSHPool, hostile_logs: Path, sshd_cluster: SshCluster
) -> None:
    """sshd receives exactly the command we built; grep finds only the lines holding the text."""
    command = grep_commands.grep_command([str(hostile_logs)], [pattern])
    found = [line async for line in pool.runner_for(mx1(pool)).stream(command)]
    assert sshd_cluster["mx1"].recorded()[-1] == command
    expected = [f"{hostile_logs}:{line}" for line in log_lines() if pattern in line]
    assert found == expected
    assert any(pattern in line for line in expected)
    assert not Path(MARKER).exists()


async def test_all_hostile_patterns_at_once_through_the_log_source(
    pool: SSHPool, hostile_logs: Path, sshd_cluster: SshCluster
) -> None:
    """One grep with every hostile pattern returns each hostile line once, and runs nothing."""
    server = mx1(pool)
    runner = SpyRunner(pool.runner_for(server))
    source = LogSource(server, runner, pool.settings.limits_for(server))
    already = len(sshd_cluster["mx1"].recorded())
    files = await source.list_files()
    events = [event async for event in source.grep(files, HOSTILE)]
    expected = [line for line in log_lines() if any(p in line for p in HOSTILE)]
    assert [event.raw for event in events] == expected
    assert sshd_cluster["mx1"].recorded()[already:] == runner.sent
    assert not Path(MARKER).exists()


@pytest.mark.parametrize("pattern", ["a\nb", "line\r", "nul\0byte", "\n"])
def test_line_breaks_and_nul_are_refused_before_any_command(pattern: str) -> None:
    """A pattern that could end the command line never becomes a command."""
    with pytest.raises(ValueError, match="single, non-empty lines"):
        grep_commands.grep_command(["/var/log/mail.log"], [pattern])
