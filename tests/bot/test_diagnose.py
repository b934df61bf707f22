"""Nothing found: the causes come ranked with stable codes, each with the evidence the search
gathered from real Postfix logs, and no cause the evidence does not support."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.query import parse_query
from bot.result import SearchResult
from bot.search import run_search
from bot.settings import ServerConfig, Settings
from bot.sources.factory import build_sources

NOW = datetime(2024, 7, 1, tzinfo=UTC)
TWO_HOSTS = Path(__file__).resolve().parents[1] / "fixtures" / "postfix" / "two-hosts"
DEMO_NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)  # after the capture (2026-11-28 16:57 to 16:59)


async def _search(log: Path, text: str, *extra: ServerConfig) -> SearchResult:
    servers = (ServerConfig(name="mx1", local=True, logs=(str(log),)), *extra)
    settings = Settings(servers=servers, default_days=None)
    return await run_search(
        parse_query(text, now=NOW, zone=UTC), settings, build_sources(settings), now=NOW
    )


def demo_settings(root: Path) -> Settings:
    """The demo's two servers (as in config/demo.yaml) on copies of the captured logs, last
    written at 17:00 on the capture day (a checkout's file times say nothing about it)."""
    stamp = datetime(2026, 11, 28, 17, 0, tzinfo=UTC).timestamp()
    servers = []
    for name, aliases in (("mx-a", ("mx-a.test", "localhost")), ("mx-b", ("mx-b.test",))):
        target = root / name / "mail.log"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(TWO_HOSTS / name / "mail.log", target)
        os.utime(target, (stamp, stamp))
        servers.append(
            ServerConfig(name=name, local=True, logs=(f"{target}*",), year=2026, aliases=aliases)
        )
    return Settings(servers=tuple(servers), default_days=None)


async def _demo(text: str, root: Path) -> SearchResult:
    """The query on the two captured Postfix instances (mx-a relays example.org to mx-b)."""
    settings = demo_settings(root)
    query = parse_query(text, now=DEMO_NOW, zone=UTC)
    return await run_search(query, settings, build_sources(settings), now=DEMO_NOW)


def codes(result: SearchResult) -> list[str]:
    return [d.code for d in result.diagnosis]


def by_code(result: SearchResult, code: str) -> tuple[str, ...]:
    return next(d.evidence for d in result.diagnosis if d.code == code)


async def test_other_day_and_rotated_logs(howto_log: Path) -> None:
    """A day before the logs start: logged on another day (first), and the logs start later."""
    result = await _search(howto_log, "sender2@example.net 2024-05-01")
    assert codes(result) == ["other_days", "window_before_retention"]
    assert result.diagnosis[0].evidence == ("lines naming sender2@example.net on: 2024-05-13",)
    assert result.diagnosis[1].cause == (
        "The logs of mx1 start after that time (rotated away, or not kept)."
    )
    assert (
        result.diagnosis[0].next_step
        == "Ask again with one of those dates: `sender2@example.net 2024-05-13`."
    )


async def test_other_days_are_days_of_the_asker(howto_log: Path) -> None:
    """Other days are dates in the asker's zone: 10:00 UTC on May 13 is May 14 at UTC+14."""
    query = parse_query(
        "sender2@example.net 2024-05-20", now=NOW, zone=ZoneInfo("Pacific/Kiritimati")
    )
    settings = Settings(
        servers=(ServerConfig(name="mx1", local=True, logs=(str(howto_log),)),), default_days=None
    )
    result = await run_search(query, settings, build_sources(settings), now=NOW)
    assert result.other_days == ("2024-05-14",)


async def test_message_id_suggestion_keeps_its_brackets(howto_log: Path) -> None:
    """The suggested query for a message-id is written the way the grammar takes it."""
    result = await _search(howto_log, "<20240513100011.1234@example.net> 2024-05-14")
    assert result.diagnosis[0].next_step == (
        "Ask again with one of those dates: `<20240513100011.1234@example.net> 2024-05-13`."
    )


async def test_failed_server_ranks_first_and_rules_out_never_reached(
    howto_log: Path, tmp_path: Path
) -> None:
    """A server with no log files is the first cause; with it unsearched, nobody says the mail
    never reached us."""
    broken = ServerConfig(name="mx2", local=True, logs=(f"{tmp_path}/none*",))
    result = await _search(howto_log, "nobody@example.org 2024-05-13", broken)
    assert codes(result) == ["servers_failed", "window_partly_before_retention"]
    assert result.diagnosis[0].evidence == (f"mx2: no log files: nothing matches {tmp_path}/none*",)
    assert result.diagnosis[0].for_operator
    assert not result.complete
    assert not result.could_not_search


async def test_time_of_day_on_the_right_day(tmp_path: Path) -> None:
    """Asked at 10:00 for mail logged at 16:58 the same day: 'another time of that day', with
    the time as evidence; never 'other days' naming the very day asked about."""
    result = await _demo("from-sent@example.net 2026-11-28 10:00", tmp_path)
    assert codes(result) == ["outside_time_of_day", "window_before_retention"]
    assert by_code(result, "outside_time_of_day") == (
        "lines naming from-sent@example.net at: 2026-11-28 16:58 (UTC)",
    )
    assert "`from-sent@example.net 2026-11-28 16:58`" in result.diagnosis[0].next_step
    assert result.other_days == ()


async def test_server_left_out_with_on(tmp_path: Path) -> None:
    """`on mx-b` when the mail is on mx-a: the cause names mx-a and the query without `on`."""
    result = await _demo("from-sent@example.net 2026-11-28 on mx-b", tmp_path)
    assert codes(result) == ["other_servers", "window_partly_before_retention"]
    assert result.diagnosis[0].cause == (
        "It was logged on mx-a, which the query left out with `on …`."
    )
    assert result.diagnosis[0].next_step == (
        "Ask again without `on …`: `from-sent@example.net 2026-11-28`."
    )


async def test_similar_local_part_and_domain(tmp_path: Path) -> None:
    """A typo in the local part or the domain: the address seen in the same window is offered
    as a ready-to-paste query, and 'never reached' is not said."""
    for typed in ("form-sent@example.net 2026-11-28", "from-sent@exmaple.net 2026-11-28"):
        result = await _demo(typed, tmp_path)
        assert codes(result) == ["window_partly_before_retention", "similar_address"], typed
        assert by_code(result, "similar_address") == (
            "seen in the same time: from-sent@example.net",
        )
        assert "`from-sent@example.net 2026-11-28`" in result.diagnosis[-1].next_step


async def test_address_in_another_role(tmp_path: Path) -> None:
    """An address that is only a message-id in the logs: 'in another role', with the line."""
    result = await _demo("expired@client.example", tmp_path)
    assert codes(result) == ["other_role"]
    (line,) = by_code(result, "other_role")
    assert line.endswith("81861220442: message-id=<expired@client.example>")


async def test_never_reached_only_when_everything_was_read(tmp_path: Path) -> None:
    """An address no line names, with both servers read: 'never reached' is the one guess,
    with how many files were read, and the domain as the next query."""
    result = await _demo("nobody@example.net 2026-11-28", tmp_path)
    assert codes(result) == ["window_partly_before_retention", "never_reached"]
    assert by_code(result, "never_reached") == (
        "read 2 log files on mx-a and mx-b covering the time asked about; no line names it",
    )
    assert "`@example.net 2026-11-28`" in result.diagnosis[-1].next_step
    assert result.diagnosis[-1].certain is False


async def test_date_after_the_logs(tmp_path: Path) -> None:
    """A date after both servers' newest lines: one merged 'no logs yet' naming both, and the
    day it was really logged; no 'never reached'."""
    result = await _demo("from-sent@example.net 2027-01-05", tmp_path)
    assert codes(result) == ["other_days", "window_after_logs"]
    assert result.diagnosis[1].cause == "mx-a and mx-b have no logs yet for that time."
    assert by_code(result, "window_after_logs") == (
        "mx-a's newest log line was written 2026-11-28 17:00 UTC",
        "mx-b's newest log line was written 2026-11-28 17:00 UTC",
    )
