"""Many searches at once over real sshd with MaxSessions equal to the bot's max_sessions: none
loses a server (sshd frees a session a moment after the channel's close exchange)."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.query import parse_query
from bot.result import SearchResult
from bot.search import run_search
from bot.settings import Limits, Settings
from bot.sources.factory import build_sources
from bot.sources.ssh import SSHPool
from tests.sshd import Sshd, limited_sshds

pytestmark = pytest.mark.sshd

MAX_SESSIONS = 4
SEARCHES = 12  # at once, each on both servers (two passes, several files: many channels)
BOUND_S = 120.0  # the whole burst; a hang fails the test instead of stalling CI


@pytest.fixture(scope="module")
def tight_servers() -> Iterator[tuple[Settings, dict[str, Sshd]]]:
    """Two sshds with MaxSessions 4, and settings that allow the bot 4 channels per connection."""
    with limited_sshds("mailtrace-load-", MAX_SESSIONS) as (configs, servers):
        limits = Limits(connect_timeout=5, command_timeout=30, max_sessions=MAX_SESSIONS)
        yield Settings(default_days=None, servers=configs, limits=limits), servers


async def test_a_burst_of_searches_never_loses_a_server(
    tight_servers: tuple[Settings, dict[str, Sshd]], capsys: pytest.CaptureFixture[str]
) -> None:
    """12 searches at once over two servers whose sshd allows exactly max_sessions channels per
    connection: every answer has both servers and no failure, and sshd never refused a session."""
    settings, servers = tight_servers
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    query = parse_query(
        f"sender3@example.net {yesterday}", now=datetime.now(UTC), zone=ZoneInfo("UTC")
    )
    durations: list[float] = []

    async def one(sources: list) -> SearchResult:  # type: ignore[type-arg]
        started = time.monotonic()
        result = await run_search(query, settings, sources, now=datetime.now(UTC))
        durations.append(time.monotonic() - started)
        return result

    async with SSHPool(settings) as pool:
        sources = list(build_sources(settings, pool))
        async with asyncio.timeout(BOUND_S):
            results = await asyncio.gather(*(one(sources) for _ in range(SEARCHES)))
    failures = [f"{f.server}: {f.reason}" for r in results for f in r.failures]
    assert failures == []
    assert all(sorted(c.server for c in r.searched) == ["mx1", "mx2"] for r in results)
    assert all(r.messages for r in results)
    for sshd in servers.values():
        assert "no more sessions" not in sshd.log_text()  # sshd's words for a refused session
    cut = statistics.quantiles(durations, n=20)
    with capsys.disabled():
        print(
            f"\n[ssh load] {SEARCHES} searches at once, 2 servers, MaxSessions={MAX_SESSIONS}: "
            f"full answer p50 {statistics.median(durations):.2f} s, p95 {cut[18]:.2f} s, "
            f"max {max(durations):.2f} s"
        )
