"""Watches over real SSH: a watch's polls share the server's session limit with searches, and a
watch on a server that cannot be reached backs off and says so once.

The watch loop (`bot.watch.schedule.Watcher`) runs its rounds here under a test clock, so each
round is a real poll over a real connection (or a real refused one) without real waiting.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.query import parse_query
from bot.search import run_search
from bot.settings import Limits, ServerConfig, Settings, WatchConfig
from bot.sources.factory import build_sources
from bot.sources.ssh import SSHPool
from bot.watch.schedule import Said, Watcher
from bot.watch.store import Target, Watch, WatchStore
from tests.sshd import Sshd, free_port, generate_key, require_sshd, start_sshd, write_rotated_logs

pytestmark = pytest.mark.sshd

MAX_SESSIONS = 2
BOUND_S = 90.0  # every test here ends within this, or fails instead of stalling CI
WATCH = WatchConfig(min_interval=1, max_interval=8, polls_per_server=2)


class Clock:
    """A clock the test moves: the watch loop's notion of now."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(scope="module")
def tight_server() -> Iterator[tuple[Settings, Sshd]]:
    """One sshd with MaxSessions 2, settings that allow the bot 2 channels on its connection,
    and a second configured server on a loopback port nobody listens on."""
    require_sshd()
    with tempfile.TemporaryDirectory(prefix="mailtrace-watch-") as name:
        root = Path(name)
        client = generate_key(root / "client")
        authorized = root / "authorized_keys"
        authorized.write_text(client.public_line + "\n")
        sshd = start_sshd("mx1", root / "mx1", authorized, max_sessions=MAX_SESSIONS)
        try:
            known_hosts = root / "known_hosts"
            known_hosts.write_text(sshd.known_hosts_line() + "\n")
            write_rotated_logs(root / "logs", "mx1")
            common = {
                "keys": (str(client.private),),
                "use_agent": False,
                "known_hosts": str(known_hosts),
                "logs": (str(root / "logs") + "/mail.log*",),
            }
            servers = (
                ServerConfig(name="mx1", host=sshd.host, port=sshd.port, **common),
                ServerConfig(name="gone", host="127.0.0.1", port=free_port(), **common),
            )
            limits = Limits(connect_timeout=3, command_timeout=20, max_sessions=MAX_SESSIONS)
            yield (
                Settings(default_days=None, servers=servers, limits=limits, watch=WATCH),
                sshd,
            )
        finally:
            sshd.stop()


def _watch(clock: Clock, server: str, queue_ids: list[str]) -> Watch:
    return Watch(
        team="T1",
        user="U1",
        channel="C1",
        thread_ts="1.1",
        targets=tuple(
            Target(server=server, queue_id=q, address=f"{q.lower()}@example.org") for q in queue_ids
        ),
        created_at=clock.now,
        expires_at=clock.now + timedelta(days=2),
        next_poll_at=clock.now,
        interval_s=WATCH.min_interval,
    )


async def test_a_watch_on_an_unreachable_server_backs_off_and_says_so_once(
    tight_server: tuple[Settings, Sshd], tmp_path: Path
) -> None:
    """Four due rounds against a server whose port refuses connections: one "unreachable"
    reply, the watch still active, and its interval doubling up to the configured maximum."""
    settings, _ = tight_server
    clock = Clock()
    store = WatchStore(tmp_path / "watches.sqlite3")
    said: list[Said] = []

    async def notify(_: Watch, what: Said, __: str) -> bool:
        said.append(what)
        return True

    audited: list[str] = []
    async with SSHPool(settings) as pool:
        sources = list(build_sources(settings, pool))
        watcher = Watcher(
            store,
            settings,
            lambda: sources,
            notify,
            lambda _w, e, _d: audited.append(e),
            clock=clock,
        )
        store.add(_watch(clock, "gone", ["ABCDE12345"]), per_user=5, per_workspace=50)
        intervals = []
        async with asyncio.timeout(BOUND_S):
            for _ in range(4):
                assert await watcher.round() == 1  # due, and looked at
                [active] = store.active()
                intervals.append(active.interval_s)
                clock.advance(active.interval_s)
    assert said == [Said.UNREACHABLE]
    assert audited == ["watch_unreachable"]  # audited when said, not on every look
    assert intervals == [2, 4, 8, 8]
    assert active.unreachable_said


async def test_watch_polls_and_searches_together_stay_within_max_sessions(
    tight_server: tuple[Settings, Sshd], tmp_path: Path
) -> None:
    """Watch rounds polling the live queue while six searches run on the same connection: no
    channel beyond sshd's MaxSessions is ever opened (sshd logs none refused), every search is
    complete, and every round looked at its watches."""
    settings, sshd = tight_server
    before = sshd.log_text().count("no more sessions")
    clock = Clock()
    store = WatchStore(tmp_path / "watches.sqlite3")
    for n in range(4):
        ids = [f"ABCDE{n}{k}000" for k in range(3)]
        store.add(_watch(clock, "mx1", ids), per_user=50, per_workspace=50)

    async def notify(*_: object) -> bool:
        return True

    query = parse_query("sender3@example.net on mx1", now=datetime.now(UTC), zone=ZoneInfo("UTC"))
    async with SSHPool(settings) as pool:
        sources = list(build_sources(settings, pool))
        watcher = Watcher(store, settings, lambda: sources, notify, lambda *_: None, clock=clock)

        async def rounds() -> list[int]:
            looked = []
            for _ in range(3):
                looked.append(await watcher.round())
                clock.advance(WATCH.max_interval)
            return looked

        async with asyncio.timeout(BOUND_S):
            looked, *results = await asyncio.gather(
                rounds(),
                *(run_search(query, settings, sources, now=datetime.now(UTC)) for _ in range(6)),
            )
    assert looked == [4, 4, 4]
    assert [r.failures for r in results] == [()] * 6
    assert all(r.messages for r in results)
    assert sshd.log_text().count("no more sessions") == before
