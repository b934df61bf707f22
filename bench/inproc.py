"""In-process measurements, run as a child of `bench/run.py` (so its peak memory is its own).
Prints one JSON object.

    warm        the bot's case: `run_search` through one reused SSHPool (after one question
                that connects and lists the files), `--repeat` times; the floor is
                `--floor` run over the same warm connection; `--concurrent N` then asks N
                questions at once through the same pool.
    throughput  parse + group a file as the search does (parse_line with the file's year
                guess, then group_messages), lines per second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.query import parse_query
from bot.search import run_search
from bot.settings import load_settings
from bot.sources.factory import build_sources
from bot.sources.ssh import SSHPool
from parsers.envelope import YearGuess
from parsers.postfix import parse_line
from parsers.trace import group_messages


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def warm(args: argparse.Namespace) -> dict[str, Any]:
    settings = load_settings(args.config)
    now = datetime.now(UTC)
    query = parse_query(args.query, now=now, zone=ZoneInfo("UTC"))
    out: dict[str, Any] = {}
    async with SSHPool(settings) as pool:
        sources = build_sources(settings, pool)
        started = time.perf_counter()
        await run_search(query, settings, sources, now=now)  # connect, list and date the files
        out["first_s"] = time.perf_counter() - started
        conn = await pool.connection(settings.servers[0])
        floors = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            await conn.run(args.floor)
            floors.append(time.perf_counter() - started)
        walls = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            result = await run_search(query, settings, sources, now=now)
            walls.append(time.perf_counter() - started)
        out |= {
            "floor_s": statistics.median(floors),
            "warm_s": statistics.median(walls),
            "messages": len(result.messages),
            "timings": result.timings.model_dump(mode="json") if result.timings else None,
        }
        if args.concurrent:
            out["concurrent"] = await _at_once(args.concurrent, query, settings, sources, now)
    return out


async def _at_once(n: int, query: Any, settings: Any, sources: Any, now: datetime) -> Any:
    """n questions at once through the warm pool: each one's latency, and the whole."""
    began = time.perf_counter()

    async def one() -> float:
        await run_search(query, settings, sources, now=now)
        return time.perf_counter() - began

    latencies = await asyncio.gather(*(one() for _ in range(n)))
    return {
        "n": n,
        "p50_s": _percentile(latencies, 0.5),
        "p95_s": _percentile(latencies, 0.95),
        "total_s": time.perf_counter() - began,
    }


def throughput(path: Path) -> dict[str, Any]:
    mtime = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
    years = YearGuess(mtime, None)
    started = time.perf_counter()
    with path.open(encoding="utf-8", errors="replace") as handle:
        events = [parse_line(line, source="mx1", path=str(path), years=years) for line in handle]
    parsed = time.perf_counter()
    messages = group_messages(events)
    grouped = time.perf_counter()
    return {
        "lines": len(events),
        "messages": len(messages),
        "parse_s": parsed - started,
        "group_s": grouped - parsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="what", required=True)
    w = sub.add_parser("warm")
    w.add_argument("--config", required=True)
    w.add_argument("--query", required=True)
    w.add_argument("--floor", default="true", help="remote command: the floor")
    w.add_argument("--repeat", type=int, default=5)
    w.add_argument("--concurrent", type=int, default=0)
    t = sub.add_parser("throughput")
    t.add_argument("--file", type=Path, required=True)
    args = parser.parse_args()
    done = asyncio.run(warm(args)) if args.what == "warm" else throughput(args.file)
    print(json.dumps(done))


if __name__ == "__main__":
    main()
