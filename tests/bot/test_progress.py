"""run_search reports each chosen server as it answers or fails."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bot.query import parse_query
from bot.search import run_search
from bot.settings import ServerConfig, Settings
from bot.sources.factory import build_sources


async def test_progress_names_each_server_once(tmp_path: Path, howto_log: Path) -> None:
    """One server answers, one fails: each is reported once, with its outcome."""
    settings = Settings(
        servers=(
            ServerConfig(name="good", local=True, logs=(str(howto_log),)),
            ServerConfig(name="bad", local=True, logs=(str(tmp_path / "none*"),)),
        ),
        default_days=None,
    )
    now = datetime(2024, 5, 14, tzinfo=UTC)
    seen: list[tuple[str, str]] = []
    query = parse_query("sender2@example.net 2024-05-13", now=now, zone=UTC)
    result = await run_search(
        query, settings, build_sources(settings), now=now, progress=lambda n, s: seen.append((n, s))
    )
    assert sorted(seen) == [("bad", "failed: no log files"), ("good", "answered")]
    assert len(result.messages) == 1
