"""Remote commands per query: a warm source lists and greps both passes in one; answers stay
the same."""

from __future__ import annotations

import gzip
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.query import parse_query
from bot.render.jsonout import render_json
from bot.result import SearchResult
from bot.search import run_search
from bot.settings import Limits, ServerConfig, Settings
from bot.sources import riding
from bot.sources.runner import LocalRunner
from bot.sources.source import LogSource
from bot.timings import Timings
from parsers.models import Status
from tests.recording import RecordingRunner

NOW = datetime(2024, 5, 14, 12, 0, tzinfo=UTC)


def _message(day: int, qid: str, sender: str) -> str:
    at = f"May {day} 10:00:00 mx postfix"
    return (
        f"{at}/smtpd[1]: {qid}: client=c.example[192.0.2.9]\n"
        f"{at}/qmgr[2]: {qid}: from=<{sender}>, size=10, nrcpt=1 (queue active)\n"
        f"{at}/smtp[3]: {qid}: to=<r@example.org>, relay=mx.example.org[198.51.100.7]:25, "
        "delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)\n"
        f"{at}/qmgr[2]: {qid}: removed\n"
    )


def _write(path: Path, text: str, day: int) -> None:
    path.write_text(text)
    stamp = datetime(2024, 5, day, 23, tzinfo=UTC).timestamp()
    os.utime(path, (stamp, stamp))


def _logs(directory: Path) -> None:
    _write(directory / "mail.log.1", _message(12, "AB12C1", "s@example.net"), 12)
    _write(directory / "mail.log", _message(13, "AB12C2", "s@example.net"), 13)


def _settings(directory: Path) -> Settings:
    server = ServerConfig(name="mx", local=True, logs=(f"{directory}/mail.log*",))
    return Settings(servers=(server,), limits=Limits(), default_days=None)


async def _ask(settings: Settings, source: LogSource, text: str) -> SearchResult:
    query = parse_query(text, now=NOW, zone=UTC)
    return await run_search(query, settings, [source], now=NOW)


def _answer(result: SearchResult) -> str:
    return render_json(result.model_copy(update={"duration_s": 0.0, "timings": Timings()}))


async def test_warm_source_lists_and_greps_in_one_command(tmp_path: Path) -> None:
    """Asked again, a source sends the listing, pass 1 and pass 2 as one command (and the
    answer's timings say so), and answers the same as a source asked for the first time."""
    _logs(tmp_path)
    settings = _settings(tmp_path)
    runner = RecordingRunner("mx")
    source = LogSource(settings.servers[0], runner, settings.limits)
    first = await _ask(settings, source, "s@example.net 2024-05-13")
    cold = len(runner.commands)
    with (tmp_path / "mail.log").open("a") as handle:  # the current log grows meanwhile
        handle.write("May 13 11:00:00 mx postfix/smtpd[9]: connect from x[192.0.2.1]\n")
    stamp = datetime(2024, 5, 13, 23, 30, tzinfo=UTC).timestamp()
    os.utime(tmp_path / "mail.log", (stamp, stamp))
    second = await _ask(settings, source, "s@example.net 2024-05-13")
    assert cold == 2  # listing, pass 1 with pass 2
    assert len(runner.commands) - cold == 1  # listing with both passes
    assert [(s.server, s.commands) for s in first.timings.servers] == [("mx", 2)]
    assert [(s.server, s.commands) for s in second.timings.servers] == [("mx", 1)]
    assert set(second.timings.phases) == {"search", "group", "journeys"}
    fresh = LogSource(settings.servers[0], LocalRunner("mx"), settings.limits)
    assert _answer(second) == _answer(await _ask(settings, fresh, "s@example.net 2024-05-13"))
    assert second.messages == first.messages
    (message,) = second.messages
    assert message.queue_id == "AB12C2"


async def test_rotation_between_questions_gives_a_fresh_answer(tmp_path: Path) -> None:
    """When the logs rotate between two questions, the warm source's answer is the one a fresh
    source gives: the grep of the files chosen from the old listing is not used."""
    _logs(tmp_path)
    settings = _settings(tmp_path)
    runner = RecordingRunner("mx")
    warm = LogSource(settings.servers[0], runner, settings.limits)
    await _ask(settings, warm, "s@example.net 2024-05-13")
    (tmp_path / "mail.log.1").rename(tmp_path / "mail.log.2")
    (tmp_path / "mail.log").rename(tmp_path / "mail.log.1")
    _write(tmp_path / "mail.log", _message(14, "AB12C3", "s@example.net"), 14)
    before = len(runner.commands)
    rotated = await _ask(settings, warm, "s@example.net 2024-05-13")
    fresh = await _ask(
        settings,
        LogSource(settings.servers[0], LocalRunner("mx"), settings.limits),
        "s@example.net 2024-05-13",
    )
    assert _answer(rotated) == _answer(fresh)
    (message,) = rotated.messages
    assert message.queue_id == "AB12C2"
    assert len(runner.commands) - before == 2  # listing (its grep dropped), pass 1 with pass 2
    assert [Path(f.path).name for f in rotated.searched[0].files if f.searched] == ["mail.log.1"]


async def test_window_moving_to_another_file_is_searched_there(tmp_path: Path) -> None:
    """A warm source asked about another day searches that day's file, not the last one's."""
    _logs(tmp_path)
    settings = _settings(tmp_path)
    source = LogSource(settings.servers[0], LocalRunner("mx"), settings.limits)
    await _ask(settings, source, "s@example.net 2024-05-13")
    result = await _ask(settings, source, "s@example.net 2024-05-12")
    (message,) = result.messages
    assert message.queue_id == "AB12C1"
    assert message.first_seen == datetime(2024, 5, 12, 10, tzinfo=UTC)


# A leading dash (grep option?) and shell metacharacters: the needle must stay one literal.
ODD_SENDER = "-e'&|*?{x}~#!%@example.net"
ODD_MESSAGE_ID = "<a$(id)`x`;&'\"@m.example>"


def _odd_logs(directory: Path, noise: int = 0) -> None:
    """Today's plain log (an odd sender's message amid `noise` lines) and yesterday's, gzipped."""
    at = "May 13 10:00:00 mx postfix"
    filler = "".join(
        f"May 13 09:{n % 60:02d}:00 mx postfix/smtpd[7]: connect from n{n}.example[192.0.2.{n % 250}]\n"
        for n in range(noise)
    )
    text = (
        filler
        + f"{at}/smtpd[1]: AB12C9: client=c.example[192.0.2.9]\n"
        + f"{at}/cleanup[4]: AB12C9: message-id={ODD_MESSAGE_ID}\n"
        + f"{at}/qmgr[2]: AB12C9: from=<{ODD_SENDER}>, size=10, nrcpt=1 (queue active)\n"
        + f"{at}/smtp[3]: AB12C9: to=<r@example.org>, relay=mx.example.org[198.51.100.7]:25, "
        "delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)\n"
        + f"{at}/qmgr[2]: AB12C9: removed\n"
        + filler
    )
    _write(directory / "mail.log", text, 13)
    with gzip.open(directory / "mail.log.1.gz", "wt") as handle:
        handle.write(_message(12, "AB12C1", "s@example.net"))
    stamp = datetime(2024, 5, 12, 23, tzinfo=UTC).timestamp()
    os.utime(directory / "mail.log.1.gz", (stamp, stamp))


@pytest.mark.parametrize(
    ("question", "found", "region_mb"),
    [
        (f"{ODD_SENDER} 2024-05-13", True, 16),
        (f"{ODD_MESSAGE_ID} 2024-05-13", True, 16),
        (f"{ODD_SENDER} 2024-05-13", True, 0.01),  # the log is read around the hit
        ("nobody@example.net 2024-05-13", False, 16),
        (f"{ODD_SENDER} 2024-05-12", False, 16),  # the compressed file
    ],
)
async def test_one_command_per_warm_question(
    tmp_path: Path, question: str, found: bool, region_mb: float
) -> None:
    """A warm source answers a question about one day with one remote command (listing, pass 1
    and pass 2), hit or miss, whatever the needle holds; the cold one takes two (listing with
    every file dated, then both passes); the answers are those pass 2 on its own gives."""
    _odd_logs(tmp_path, noise=400)
    server = ServerConfig(name="mx", local=True, logs=(f"{tmp_path}/mail.log*",))
    settings = Settings(
        servers=(server,), limits=Limits(pass2_region_mb=region_mb), default_days=None
    )
    runner = RecordingRunner("mx")
    source = LogSource(server, runner, settings.limits)
    cold = await _ask(settings, source, question)
    searched = len(runner.commands)
    warm = await _ask(settings, source, question)
    asked = runner.commands[searched:]
    alone = settings.model_copy(
        update={"limits": Limits(pass2_region_mb=region_mb, pass2_ahead_mb=0)}
    )
    apart = RecordingRunner("mx")
    reference = await _ask(alone, LogSource(server, apart, alone.limits), question)
    assert _answer(cold) == _answer(warm) == _answer(reference)
    # an empty answer's diagnosis scans further, case-insensitively (other days, similar
    # addresses): those commands come after the search's one
    assert all(" -i " in command for command in asked[1:])
    assert all(" -i " in command for command in runner.commands[2:searched])
    if found:
        (message,) = warm.messages
        assert message.queue_id == "AB12C9"
        assert len(message.lines) == 5
        assert message.status is Status.SENT
        assert (searched, len(asked)) == (2, 1)  # cold: listing, both passes; warm: one
        assert len(apart.commands) == 3  # listing, pass 1, pass 2
    else:
        assert warm.messages == ()
        assert len(asked) == searched - 1  # the listing rides with the search
    assert not (tmp_path / "pwned").exists()


def _line(day: int, t: str, daemon: str, text: str) -> str:
    return f"May {day} {t} mx postfix/{daemon}[1]: {text}\n"


def _pad(day: int, n: int, qid: str = "", hour: int = 10) -> str:
    """`n` lines of other messages; with `qid`, each also names it (as a bounce would)."""
    return "".join(
        _line(day, f"{hour:02d}:00:00", "smtpd", f"connect from p{i}.example[192.0.2.{i % 250}]")
        + (_line(day, f"{hour:02d}:00:00", "qmgr", f"FF{i:04X}A: note {qid}") if qid else "")
        for i in range(n)
    )


def _life(day: int, qid: str, sender: str, hour: int = 10) -> str:
    at = f"{hour:02d}:00:0"
    return (
        _line(day, at + "0", "smtpd", f"{qid}: client=c[203.0.113.5]")
        + _pad(day, 6, hour=hour)
        + _line(day, at + "0", "qmgr", f"{qid}: from=<{sender}>, size=1, nrcpt=1 (queue active)")
        + _pad(day, 6, qid, hour=hour)
        + _line(
            day,
            at + "1",
            "smtp",
            f"{qid}: to=<r@example.org>, relay=mx[192.0.2.8]:25, delay=1, delays=0/0/0/1, "
            "dsn=2.0.0, status=sent (250 ok)",
        )
        + _pad(day, 3, hour=hour)
        + _line(day, at + "1", "qmgr", f"{qid}: removed")
    )


async def test_regions_cut_from_the_servers_wider_ones_answer_the_same(tmp_path: Path) -> None:
    """When pass 1 also hits lines of the asked day outside the asked hours, the server reads
    wider ranges than the client's pass 2 wants; the client's ranges cut from them give the
    answer pass 2 on its own gives, wherever the ranges' edges fall (cut lines, the last line)."""
    log = tmp_path / "mail.log"
    _write(
        log,
        _pad(13, 30, hour=6)
        + _life(13, "4A1B2C3D4E", "s@example.net", hour=6)
        + _pad(13, 120, hour=8)
        + _life(13, "5B2C3D4E5F", "s@example.net")
        + _pad(13, 150),
        13,
    )
    server = ServerConfig(name="mx", local=True, logs=(str(log),))
    served = 0
    for step in range(40):
        region_mb = (1.0 + step * 0.09) / 1024  # edges move by ~90 bytes along the lines
        results, counts = [], []
        for ahead_mb in (16, 0):
            limits = Limits(pass2_region_mb=region_mb, pass2_ahead_mb=ahead_mb)
            settings = Settings(servers=(server,), limits=limits, default_days=None)
            runner = RecordingRunner("mx")
            result = await _ask(
                settings, LogSource(server, runner, limits), "s@example.net 2024-05-13 10:00"
            )
            results.append(result)
            counts.append(len(runner.commands))
        served += counts[0] < counts[1]
        riding, alone = results
        assert _answer(riding) == _answer(alone), step
        (message,) = riding.messages
        assert message.queue_id == "5B2C3D4E5F"
    assert served == 40  # pass 2 (or its first part, the ranges) answered from pass 1's command


def test_day_prefixes_name_the_windows_days_as_lines_start() -> None:
    """The server's ranges follow hits of the asked days only: syslog's two day forms in the
    server's zone, RFC 3339 dates a day either side; an open or month-long window: every hit."""
    start = datetime(2024, 5, 8, 22, tzinfo=UTC)
    prefixes = riding.day_prefixes(start, start + timedelta(hours=1), ZoneInfo("Europe/Berlin"))
    assert set(prefixes) == {"May  9 ", "May 09 ", "2024-05-08", "2024-05-09", "2024-05-10"}
    assert riding.day_prefixes(None, start, UTC) == ()
    assert riding.day_prefixes(start, start + timedelta(days=40), UTC) == ()
