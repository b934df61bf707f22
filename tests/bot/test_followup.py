"""Pass 2's follow-up into other files: bounded by the queue lifetime, one command per side."""

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


def _line(day: datetime, t: str, daemon: str, text: str) -> str:
    return f"May {day.day:2d} {t} mx postfix/{daemon}[1]: {text}\n"


def _daily_logs(directory: Path, lines: dict[int, str]) -> None:
    """One file per day, `lines[n]` on day n (0 = May 2), noise on every day."""
    for n in range(DAYS):
        day = FIRST_DAY + timedelta(days=n)
        name = "mail.log" if n == DAYS - 1 else f"mail.log.{DAYS - 1 - n}"
        body = _line(day, "00:00:01", "smtpd", "connect from noise.example[198.51.100.1]")
        body += lines.get(n, "")
        path = directory / name
        path.write_text(body)
        stamp = (day + timedelta(hours=23)).timestamp()
        os.utime(path, (stamp, stamp))


def _start(qid: str, sender: str) -> str:
    return _line(FIRST_DAY, "10:00:00", "smtpd", f"{qid}: client=c.example[192.0.2.9]") + _line(
        FIRST_DAY, "10:00:00", "qmgr", f"{qid}: from=<{sender}>, size=10, nrcpt=1 (queue active)"
    )


def _deferred(qid: str, day: datetime, rcpt: str = "r@example.org") -> str:
    return _line(
        day,
        "10:00:01",
        "smtp",
        f"{qid}: to=<{rcpt}>, relay=none, delay=1, delays=0/0/1/0, dsn=4.4.1, "
        "status=deferred (connect to mx.example.org[198.51.100.7]:25: Connection refused)",
    )


async def _search(directory: Path, text: str) -> tuple[SearchResult, RecordingRunner]:
    server = ServerConfig(
        name="mx", local=True, logs=(f"{directory}/mail.log*",), queue_lifetime="2d"
    )
    settings = Settings(servers=(server,), limits=Limits(), default_days=None)
    runner = RecordingRunner("mx")
    source = LogSource(server, runner, settings.limits_for(server))
    query = parse_query(text, now=NOW, zone=UTC)
    return await run_search(query, settings, [source], now=NOW), runner


def _searched(result: SearchResult) -> list[str]:
    return sorted(Path(f.path).name for f in result.searched[0].files if f.searched)


def _greps(runner: RecordingRunner) -> int:
    return sum(1 for c in runner.commands if "grep -F" in c or grep_commands.RG in c)


async def test_deferred_message_is_followed_only_as_far_as_its_lifetime(tmp_path: Path) -> None:
    """A message deferred on May 2 with a 2-day queue lifetime is followed to its expiry on
    May 4 in one command, and the files of May 5 and later are not read."""
    expiry = FIRST_DAY + timedelta(days=2)
    _daily_logs(
        tmp_path,
        {
            0: _start("D1FE01", "late@example.net") + _deferred("D1FE01", FIRST_DAY),
            1: _deferred("D1FE01", FIRST_DAY + timedelta(days=1)),
            2: _line(
                expiry,
                "11:00:00",
                "qmgr",
                "D1FE01: from=<late@example.net>, status=expired, returned to sender",
            )
            + _line(expiry, "11:00:00", "qmgr", "D1FE01: removed"),
        },
    )
    result, runner = await _search(tmp_path, "late@example.net 2024-05-02")
    (message,) = result.messages
    assert message.status is Status.EXPIRED
    assert _searched(result) == ["mail.log.5", "mail.log.6", "mail.log.7"]
    assert _greps(runner) == 2  # pass 1 with pass 2, the later files together


async def test_held_message_is_followed_to_the_last_file(tmp_path: Path) -> None:
    """A held message has no lifetime: it is followed through every later file, in one command,
    and its release a week later is found."""
    held = _line(
        FIRST_DAY,
        "10:00:00",
        "cleanup",
        "4E1D01: hold: header Subject: review from c.example[192.0.2.9]; "
        "from=<kept@example.net> to=<r@example.org> proto=ESMTP helo=<c>: held for review",
    )
    today = FIRST_DAY + timedelta(days=DAYS - 1)
    released = _line(
        today,
        "09:00:00",
        "smtp",
        "4E1D01: to=<r@example.org>, relay=mx.example.org[198.51.100.7]:25, delay=9, "
        "delays=9/0/0/0, dsn=2.0.0, status=sent (250 ok)",
    ) + _line(today, "09:00:00", "qmgr", "4E1D01: removed")
    _daily_logs(tmp_path, {0: _start("4E1D01", "kept@example.net") + held, DAYS - 1: released})
    result, runner = await _search(tmp_path, "kept@example.net 2024-05-02")
    (message,) = result.messages
    assert message.status is Status.SENT
    assert len(_searched(result)) == DAYS
    assert _greps(runner) == 2  # pass 1 with pass 2, the other files together


async def test_missing_start_is_looked_for_only_within_the_lifetime(tmp_path: Path) -> None:
    """A message delivered on May 8 whose start is missing is looked for back to May 6 (its
    lifetime before), in one command; older files are not read."""
    day = FIRST_DAY + timedelta(days=6)
    start = FIRST_DAY + timedelta(days=5)
    _daily_logs(
        tmp_path,
        {
            5: _line(start, "10:00:00", "smtpd", "5A1B01: client=c.example[192.0.2.9]")
            + _line(
                start,
                "10:00:00",
                "qmgr",
                "5A1B01: from=<s@example.net>, size=10, nrcpt=1 (queue active)",
            )
            + _deferred("5A1B01", start, "found@example.org"),
            6: _line(
                day,
                "10:00:00",
                "smtp",
                "5A1B01: to=<found@example.org>, relay=mx.example.org[198.51.100.7]:25, "
                "delay=9, delays=9/0/0/0, dsn=2.0.0, status=sent (250 ok)",
            )
            + _line(day, "10:00:00", "qmgr", "5A1B01: removed"),
        },
    )
    result, runner = await _search(tmp_path, "found@example.org 2024-05-08")
    (message,) = result.messages
    assert message.status is Status.SENT
    assert message.sender == "s@example.net"
    assert _searched(result) == ["mail.log.1", "mail.log.2", "mail.log.3"]
    assert _greps(runner) == 2  # pass 1 with pass 2, the other files together
