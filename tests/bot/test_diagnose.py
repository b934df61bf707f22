"""Nothing found: the likely reasons come ranked, each with the evidence the search gathered."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.query import parse_query
from bot.result import SearchResult
from bot.search import run_search
from bot.settings import ServerConfig, Settings
from bot.sources.factory import build_sources

NOW = datetime(2024, 7, 1, tzinfo=UTC)


async def _search(log: Path, text: str, *extra: ServerConfig) -> SearchResult:
    servers = (ServerConfig(name="mx1", local=True, logs=(str(log),)), *extra)
    settings = Settings(servers=servers, default_days=None)
    return await run_search(
        parse_query(text, now=NOW, zone=UTC), settings, build_sources(settings), now=NOW
    )


async def test_other_day_and_rotated_logs(howto_log: Path) -> None:
    """A day before the logs start: it was logged on another day, and the logs start later."""
    result = await _search(howto_log, "sender2@example.net 2024-05-01")
    causes = [d.cause for d in result.diagnosis]
    assert causes[0] == "It was logged, but on other days than the one asked about."
    assert result.diagnosis[0].evidence == ("lines naming sender2@example.net on: 2024-05-13",)
    assert "mx1's logs start after that time (rotated away, or not kept)." in causes
    # it did reach us: no guess that contradicts that
    assert "The mail probably never reached our servers." not in causes
    assert (
        result.diagnosis[0].next_step
        == "Ask again with one of those dates, e.g. `sender2@example.net 2024-05-13`."
    )


async def test_other_days_are_days_of_the_asker(howto_log: Path) -> None:
    """Other days are dates in the asker's zone: 10:00 UTC on May 13 is May 13 in Tokyo too,
    but 23:00 UTC would be the next day there."""
    query = parse_query(
        "sender2@example.net 2024-05-20", now=NOW, zone=ZoneInfo("Pacific/Kiritimati")
    )
    settings = Settings(
        servers=(ServerConfig(name="mx1", local=True, logs=(str(howto_log),)),), default_days=None
    )
    result = await run_search(query, settings, build_sources(settings), now=NOW)
    assert result.other_days == ("2024-05-14",)  # UTC+14: 10:00 UTC is already the next day


async def test_message_id_suggestion_keeps_its_brackets(howto_log: Path) -> None:
    """The suggested query for a message-id is written the way the grammar takes it."""
    result = await _search(howto_log, "<20240513100011.1234@example.net> 2024-05-14")
    assert result.diagnosis[0].next_step == (
        "Ask again with one of those dates, e.g. `<20240513100011.1234@example.net> 2024-05-13`."
    )


async def test_day_after_the_newest_log(howto_log: Path) -> None:
    """A day after the last log write: the server has no logs yet for that time."""
    result = await _search(howto_log, "sender2@example.net 2024-06-01")
    causes = [d.cause for d in result.diagnosis]
    assert "mx1 has no logs yet for that time." in causes


async def test_failed_server_ranks_first(howto_log: Path, tmp_path: Path) -> None:
    """An unsearchable server is the first reason, naming the server and why."""
    broken = ServerConfig(name="mx2", local=True, logs=(f"{tmp_path}/none*",))
    result = await _search(howto_log, "nobody@example.org 2024-05-13", broken)
    first = result.diagnosis[0]
    assert first.cause == "Some servers could not be searched; the mail may be in their logs."
    assert first.evidence == (f"mx2: no log files: nothing matches {tmp_path}/none*",)


async def test_never_reached_and_spelling(howto_log: Path) -> None:
    """An address no line names: it probably never reached us; try the whole domain."""
    result = await _search(howto_log, "nobody@example.org 2024-05-13")
    causes = [d.cause for d in result.diagnosis]
    assert causes == [
        "Part of the time asked about is older than mx1's logs.",  # they start at 10:00:11
        "The mail probably never reached our servers.",
        "The address may be spelled differently in the logs (alias, typo, rewrite).",
    ]
    assert result.diagnosis[1].evidence == ("searched 1 log files on mx1; no line names it",)
    assert (
        result.diagnosis[2].next_step
        == "Search the whole domain: `@example.org` with the same date."
    )
