"""Pass 1's hits, kept only for the first `limit` messages (by time) as they stream in.

Strategy: an answer traces at most `max_messages` queue IDs, the earliest by their first hit
(ties: the ID seen first). A broad query's pass 1 can read a million lines; holding every hit
until the end to pick those IDs costs hundreds of megabytes. Instead the IDs are ranked while
the lines arrive: the `limit` best are kept with their events, and an ID that falls out of them
keeps only its first time (it still counts as found). The threshold, the worst kept ID's first
time, only ever moves earlier, so an ID out of the running stays out; unless one of its later
lines is older than the threshold (lines out of time order): the events already dropped would
have been needed, `complete` turns False and the caller reads pass 1 again keeping everything.
The result is the same as ranking all the hits at the end.
"""

from __future__ import annotations

import heapq

from parsers.models import LogEvent


class EarliestMessages:
    """Collects pass-1 hits; `hits()` are those of the first `limit` queue IDs, in order."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.complete = True  # False: an ID out of the running came back (see module doc)
        self._events: list[LogEvent] = []
        self._kept: dict[str, tuple[float, int]] = {}  # ID -> (first time, order seen)
        self._worst: list[tuple[float, int, str]] = []  # max-heap of the kept (negated keys)
        self._out: dict[str, float] = {}  # IDs out of the running -> their first time
        self._seen = 0
        self._compact_at = 1024

    @property
    def found(self) -> int:
        """How many distinct queue IDs the hits named."""
        return len(self._kept) + len(self._out)

    def add(self, event: LogEvent) -> None:
        qid = event.queue_id
        if qid is None:  # a pre-queue line is a message of its own: always kept
            self._events.append(event)
            return
        stamp = event.timestamp.timestamp() if event.timestamp is not None else float("-inf")
        key = self._kept.get(qid)
        if key is not None:
            if stamp < key[0]:
                self._kept[qid] = key = (stamp, key[1])
                heapq.heappush(self._worst, (-key[0], -key[1], qid))
            self._events.append(event)
            return
        first = self._out.get(qid)
        if first is not None:
            # its first time was after the threshold; an older line may bring it back
            if stamp < first:
                self._out[qid] = stamp
                if stamp <= self._threshold()[0]:  # (a tie: its order decides; assume the worst)
                    self.complete = False
            return
        key = (stamp, self._seen)
        self._seen += 1
        if len(self._kept) < self.limit:
            self._keep(qid, key, event)
            return
        worst = self._threshold()
        if key < worst[:2]:
            del self._kept[worst[2]]
            heapq.heappop(self._worst)
            self._out[worst[2]] = worst[0]
            self._keep(qid, key, event)
        else:
            self._out[qid] = stamp

    def hits(self) -> list[LogEvent]:
        """The kept hits, in the order they came."""
        self._compact()
        return self._events

    def _keep(self, qid: str, key: tuple[float, int], event: LogEvent) -> None:
        self._kept[qid] = key
        heapq.heappush(self._worst, (-key[0], -key[1], qid))
        self._events.append(event)
        if len(self._events) >= self._compact_at:
            self._compact()
            self._compact_at = max(1024, 2 * len(self._events))

    def _threshold(self) -> tuple[float, int, str]:
        """(first time, order seen, ID) of the worst kept ID (stale heap entries dropped)."""
        while True:
            stamp, order, qid = self._worst[0]
            if self._kept.get(qid) == (-stamp, -order):
                return -stamp, -order, qid
            heapq.heappop(self._worst)

    def _compact(self) -> None:
        kept = self._kept
        self._events = [e for e in self._events if e.queue_id is None or e.queue_id in kept]
