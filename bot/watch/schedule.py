"""When to look again, and what to say: the watch loop behind the Slack follow-ups.

Strategy: each round takes the active watches that are due, asks each server once for all of
their recipients there (`poll.look`; at most `polls_per_server` looks at one server at a time,
so a watch never needs more SSH channels than a search), and then decides per watch: every
recipient final -> one "done" reply and the watch ends; past its end (give-up time + a day) ->
one "stopped watching" reply; a server unreachable -> said once, and the watch keeps trying.
Otherwise the interval doubles, from `min_interval` up to `max_interval`: mail that has waited
long tends to wait longer, and the servers are spared. "Retry now" sets the interval back to
the start. What is said goes through `notify`; a reply that could not be posted is tried again
at the next round (the watch stays active). Every step is reported to `audit`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from bot.settings import Settings, WatchConfig
from bot.sources.source import LogSource
from bot.watch.poll import Look, is_final, look
from bot.watch.store import Target, Watch, WatchState, WatchStore

logger = logging.getLogger("mailtrace.watch")
TICK_S = 1.0  # the loop re-checks whether it should stop at least this often


class Said(StrEnum):
    DONE = "done"
    EXPIRED = "expired"
    UNREACHABLE = "unreachable"


Notify = Callable[[Watch, Said, str], Awaitable[bool]]
Audit = Callable[[Watch, str, str], None]


def next_interval(current: float, config: WatchConfig) -> float:
    """The back-off: twice the last wait, within the configured bounds."""
    return min(config.max_interval, max(config.min_interval, current * 2))


class Watcher:
    def __init__(
        self,
        store: WatchStore,
        settings: Settings,
        sources: Callable[[], Sequence[LogSource]],
        notify: Notify,
        audit: Audit,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.settings = settings
        self.sources = sources
        self.notify = notify
        self.audit = audit
        self.clock = clock
        self.config = settings.watch
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._wake = asyncio.Event()
        self.rounds = 0

    def wake(self) -> None:
        """Look at due watches now rather than at the next tick."""
        self._wake.set()

    def soon(self, watch: Watch) -> Watch:
        """The watch, due at once with its interval back at the start (after "Retry now")."""
        again = watch.model_copy(
            update={"next_poll_at": self.clock(), "interval_s": self.config.min_interval}
        )
        self.store.save(again)
        self.wake()
        return again

    async def run(self, keep_going: Callable[[], bool]) -> None:
        """Rounds until `keep_going()` is false; each wait is at most TICK_S."""
        while keep_going():
            try:
                await self.round()
            except Exception:  # one bad round must not end every watch
                logger.exception("watch_round_failed")
            due = [w.next_poll_at for w in self.store.active()]
            wait = TICK_S
            if due:
                wait = max(0.0, min(wait, (min(due) - self.clock()).total_seconds()))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def round(self) -> int:
        """Look at every due watch once; returns how many were due."""
        now = self.clock()
        due = [w for w in self.store.active() if w.next_poll_at <= now]
        if not due:
            return 0
        self.rounds += 1
        sources = list(self.sources())
        by_server: dict[str, list[Target]] = {}
        for w in due:
            for t in w.targets:
                if not is_final(t):
                    by_server.setdefault(t.server, []).append(t)
        since = min(w.created_at for w in due)
        servers = list(by_server)
        looks = await asyncio.gather(
            *(self._look(sources, s, by_server[s], since) for s in servers)
        )
        found = dict(zip(servers, looks, strict=True))
        for w in due:
            await self._decide(w, found)
        return len(due)

    async def _look(
        self, sources: Sequence[LogSource], server: str, targets: Sequence[Target], since: datetime
    ) -> Look:
        slot = self._slots.setdefault(server, asyncio.Semaphore(self.config.polls_per_server))
        async with slot:
            return await look(self.settings, sources, server, targets, since, clock=self.clock)

    async def _decide(self, w: Watch, found: dict[str, Look]) -> None:
        new = {(t.server, t.queue_id, t.address): t for lk in found.values() for t in lk.targets}
        targets = tuple(new.get((t.server, t.queue_id, t.address), t) for t in w.targets)
        w = w.model_copy(update={"targets": targets})
        now = self.clock()
        unreachable = {s: lk.unreachable for s, lk in found.items() if lk.unreachable}
        mine = {t.server for t in w.targets if not is_final(t)} & set(unreachable)
        if mine and not w.unreachable_said:
            why = "; ".join(f"{s}: {unreachable[s]}" for s in sorted(mine))
            if await self.notify(w, Said.UNREACHABLE, why):
                w = w.model_copy(update={"unreachable_said": True})
            self.audit(w, "watch_unreachable", why)
        if all(is_final(t) for t in w.targets):
            await self._end(w, Said.DONE, WatchState.DONE)
        elif now >= w.expires_at:
            await self._end(w, Said.EXPIRED, WatchState.EXPIRED)
        else:
            interval = next_interval(w.interval_s, self.config)
            later = now + timedelta(seconds=interval)
            self.store.save(w.model_copy(update={"interval_s": interval, "next_poll_at": later}))

    async def _end(self, w: Watch, said: Said, state: WatchState) -> None:
        summary = ", ".join(f"{t.address}: {t.status}" for t in w.targets)
        if await self.notify(w, said, summary):
            self.store.save(w.model_copy(update={"state": state}))
            self.audit(w, f"watch_{said.value}", summary)
            return
        retry = self.clock() + timedelta(seconds=self.config.min_interval)
        self.store.save(w.model_copy(update={"next_poll_at": retry}))
