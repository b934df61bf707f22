"""Hop rounds read only the linked server's files around the hand-over, in one command."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.query import parse_query
from bot.result import SearchResult
from bot.search import run_search
from bot.settings import Limits, ServerConfig, Settings
from bot.sources import grep_commands
from bot.sources.source import LogSource
from parsers.models import Status
from tests.recording import RecordingRunner

NOW = datetime(2024, 5, 9, 12, 0, tzinfo=UTC)
FIRST_DAY = datetime(2024, 5, 2, tzinfo=UTC)
DAYS = 8  # May 2 .. May 9: mail.log.7 (oldest) .. mail.log (today)
HOP_DAY = 2  # May 4: mail.log.5


def _line(host: str, day: int, t: str, daemon: str, text: str) -> str:
    return f"May {FIRST_DAY.day + day:2d} {t} {host} postfix/{daemon}[1]: {text}\n"


def _daily_logs(directory: Path, host: str, lines: dict[int, str]) -> None:
    """One file per day, `lines[n]` on day n (0 = May 2), noise on every day."""
    directory.mkdir()
    for n in range(DAYS):
        name = "mail.log" if n == DAYS - 1 else f"mail.log.{DAYS - 1 - n}"
        body = _line(host, n, "00:00:01", "smtpd", "connect from noise.example[198.51.100.1]")
        path = directory / name
        path.write_text(body + lines.get(n, ""))
        stamp = (FIRST_DAY + timedelta(days=n, hours=23)).timestamp()
        os.utime(path, (stamp, stamp))


SENDER_SIDE = "".join(
    _line("mx-a", HOP_DAY, t, d, text)
    for t, d, text in (
        ("10:00:00", "smtpd", "AAAA11: client=c.example[192.0.2.9]"),
        ("10:00:00", "qmgr", "AAAA11: from=<s@example.net>, size=10, nrcpt=1 (queue active)"),
        (
            "10:00:01",
            "smtp",
            "AAAA11: to=<r@example.org>, relay=mx-b.test[127.0.0.1]:25, delay=1, "
            "delays=0/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as BBBB22)",
        ),
        ("10:00:01", "qmgr", "AAAA11: removed"),
    )
)
RECEIVER_SIDE = "".join(
    _line("mx-b", HOP_DAY, t, d, text)
    for t, d, text in (
        ("10:00:01", "smtpd", "BBBB22: client=mx-a.test[127.0.0.1]"),
        ("10:00:01", "qmgr", "BBBB22: from=<s@example.net>, size=10, nrcpt=1 (queue active)"),
        (
            "10:00:02",
            "local",
            "BBBB22: to=<r@example.org>, relay=local, delay=1, delays=0/0/0/1, dsn=5.1.1, "
            'status=bounced (unknown user: "r")',
        ),
        ("10:00:02", "qmgr", "BBBB22: removed"),
    )
)


async def _search(
    tmp_path: Path, text: str, receiver_day: int = HOP_DAY
) -> tuple[SearchResult, dict[str, RecordingRunner]]:
    _daily_logs(tmp_path / "a", "mx-a", {HOP_DAY: SENDER_SIDE})
    _daily_logs(tmp_path / "b", "mx-b", {receiver_day: RECEIVER_SIDE})
    servers = tuple(
        ServerConfig(
            name=f"mx-{x}",
            local=True,
            logs=(f"{tmp_path / x}/mail.log*",),
            aliases=(f"mx-{x}.test",),
            queue_lifetime="1d",
        )
        for x in ("a", "b")
    )
    settings = Settings(servers=servers, limits=Limits(), default_days=None)
    runners = {s.name: RecordingRunner(s.name) for s in servers}
    sources = [LogSource(s, runners[s.name], settings.limits_for(s)) for s in servers]
    query = parse_query(text, now=NOW, zone=UTC)
    return await run_search(query, settings, sources, now=NOW), runners


def _greps(runner: RecordingRunner) -> list[str]:
    return [c for c in runner.commands if "grep -F" in c or grep_commands.RG in c]


def _searched(result: SearchResult, server: str) -> list[str]:
    (coverage,) = [s for s in result.searched if s.server == server]
    return sorted(Path(f.path).name for f in coverage.files if f.searched)


async def test_next_hop_round_greps_only_the_files_around_the_hand_over(tmp_path: Path) -> None:
    """With no date (every file of mx-a searched), the hop to mx-b greps only mx-b's files from
    the hand-over (May 4) to its one-day queue lifetime after, in one command; the hop is whole."""
    result, runners = await _search(tmp_path, "s@example.net on mx-a")
    (hop_grep,) = _greps(runners["mx-b"])
    assert "mail.log.5" in hop_grep
    assert "mail.log.4" in hop_grep
    assert "mail.log.6" not in hop_grep
    assert "mail.log.3" not in hop_grep
    assert _searched(result, "mx-b") == ["mail.log.4", "mail.log.5"]
    assert [(m.host, m.queue_id, m.status) for m in result.messages] == [
        ("mx-a", "AAAA11", Status.SENT),
        ("mx-b", "BBBB22", Status.BOUNCED),
    ]
    hop = result.messages[1]
    assert {line.rstrip("\n") for line in RECEIVER_SIDE.splitlines()} == set(hop.lines)


async def test_previous_hop_round_greps_only_the_files_around_the_hand_over(
    tmp_path: Path,
) -> None:
    """Asked on mx-b, the message's previous hop on mx-a is found by grepping only mx-a's files
    around the hand-over, and the whole sender side is in the answer."""
    result, runners = await _search(tmp_path, "BBBB22 on mx-b")
    assert _searched(result, "mx-a") == ["mail.log.4", "mail.log.5"]
    assert all("mail.log.6" not in c and "mail.log.3" not in c for c in _greps(runners["mx-a"]))
    assert [(m.host, m.queue_id) for m in result.messages] == [
        ("mx-a", "AAAA11"),
        ("mx-b", "BBBB22"),
    ]
    assert {line.rstrip("\n") for line in SENDER_SIDE.splitlines()} == set(result.messages[0].lines)


async def test_a_hop_not_around_its_hand_over_is_looked_for_in_the_other_files(
    tmp_path: Path,
) -> None:
    """mx-b's clock runs a day behind, so its lines of the hop lie in the day before the
    hand-over, outside the files around it: the round looks in mx-b's other files for that ID
    before deciding the mail went somewhere not searched, and the hop is found whole."""
    result, runners = await _search(tmp_path, "s@example.net on mx-a", receiver_day=HOP_DAY - 1)
    around, rest = _greps(runners["mx-b"])
    assert "mail.log.6" not in around
    assert "mail.log.6" in rest
    assert "BBBB22" in rest
    assert [(m.host, m.queue_id, m.status) for m in result.messages] == [
        ("mx-a", "AAAA11", Status.SENT),
        ("mx-b", "BBBB22", Status.BOUNCED),
    ]
    assert result.messages[0].links[0].host == "mx-b"  # not taken back as "not searched"
