"""Benchmark the bot's case (not a test): small logs, a warm SSH pool, one question at a time.

    python bench/warm.py --repeat 9

Starts the test fixtures' sshds (127.0.0.1 only) with their small rotated logs, asks the same
question through one reused pool `--repeat` times, and prints the median wall time of a whole
answer, the remote commands each answer sent, and the median time of one bare `true` over the
same connection (the floor of any remote command on this machine).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.query import parse_query  # noqa: E402
from bot.search import run_search  # noqa: E402
from bot.sources.factory import build_sources  # noqa: E402
from bot.sources.ssh import SSHPool, SSHRunner  # noqa: E402
from tests.sshd import running_cluster  # noqa: E402

COMMANDS: list[str] = []
_stream = SSHRunner.stream


async def _counting(self: SSHRunner, command: str) -> AsyncIterator[str]:
    COMMANDS.append(self.name)
    async for line in _stream(self, command):
        yield line


async def measure(repeat: int) -> None:
    SSHRunner.stream = _counting  # type: ignore[method-assign]
    with running_cluster() as cluster:
        settings = cluster.settings(cluster.server_config("mx1"), cluster.server_config("mx2"))
        settings = settings.model_copy(update={"default_days": None})
        yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
        now = datetime.now(UTC)
        query = parse_query(f"sender3@example.net {yesterday}", now=now, zone=ZoneInfo("UTC"))
        async with SSHPool(settings) as pool:
            sources = build_sources(settings, pool)
            conn = await pool.connection(settings.servers[1])
            floor = []
            for _ in range(repeat):
                started = time.perf_counter()
                await conn.run("true")
                floor.append(time.perf_counter() - started)
            await run_search(query, settings, sources, now=now)  # connect, date the files
            walls, counts = [], []
            for _ in range(repeat):
                COMMANDS.clear()
                started = time.perf_counter()
                result = await run_search(query, settings, sources, now=now)
                walls.append(time.perf_counter() - started)
                counts.append(len(COMMANDS))
        print(f"two servers, {len(result.messages)} messages, median of {repeat}")
        print(f"  one `true` over the warm connection   {statistics.median(floor) * 1000:6.0f} ms")
        print(f"  warm answer (run_search)              {statistics.median(walls) * 1000:6.0f} ms")
        print(f"  remote commands per answer            {statistics.median(counts):6.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    asyncio.run(measure(args.repeat))


if __name__ == "__main__":
    main()
