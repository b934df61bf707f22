"""Pass 1 on one server: the lines that name the target, and what they say.

Strategy: grep the needle in the files that cover the window (`LogSource.planned_grep`, with
the listing in the same command), keep the lines that really name the target inside the window
(`matches`, `within_window`); their queue IDs are the messages wanted, traced by pass 2 at once. The
other lines are evidence for an empty answer's diagnosis: the target at other times, in another
role, a client that came and went, similar addresses.
"""

from __future__ import annotations

import contextlib
import sys
from datetime import date, datetime, timedelta
from datetime import time as time_of_day

from bot import followup, nearmiss, timings
from bot.earliest import EarliestMessages
from bot.errors import RideIncomplete
from bot.query import Query, TargetKind
from bot.search_state import ServerState, counted, read
from bot.second_pass import trace_wanted
from bot.sources.source import LogFile
from parsers.models import EventKind, LogEvent
from parsers.trace import START_KINDS


def matches(query: Query, event: LogEvent) -> bool:
    """Does this line really name the target (not just contain the string somewhere)?"""
    target = query.target
    if query.kind is TargetKind.ADDRESS:
        if query.also_message_id and (event.message_id or "").lower() == target:
            return True
        return target in {(a or "").lower() for a in (event.sender, event.recipient, event.orig_to)}
    if query.kind is TargetKind.DOMAIN:
        return any(
            (a or "").lower().endswith(target)
            for a in (event.sender, event.recipient, event.orig_to)
        )
    if query.kind is TargetKind.QUEUE_ID:
        return target in (event.queue_id, event.new_queue_id)
    if query.kind is TargetKind.MESSAGE_ID:
        return event.message_id == target
    return event.client_ip == target


def within_window(event: LogEvent, start: datetime | None, end: datetime | None) -> bool:
    if event.timestamp is None:
        return True
    if start is not None and event.timestamp < start:
        return False
    return not (end is not None and event.timestamp >= end)


async def first_passes(
    st: ServerState, query: Query, start: datetime | None, end: datetime | None
) -> None:
    limit = st.source.limits.max_messages
    before = _Before(st)
    try:
        found = await _pass1(st, query, start, end, EarliestMessages(limit))
    except RideIncomplete:  # its lines may be cut: all of pass 1 again, pass 2 on its own
        before.restore(st)
        st.plan.ride = False
        found = await _pass1(st, query, start, end, EarliestMessages(limit))
    if found.complete:
        hits = found.hits()
        if found.found > limit:
            st.untraced = found.found - limit
    else:  # lines out of time order: read pass 1 again, keeping every hit until the end
        before.restore(st)
        st.plan.ride = False  # pass 2 on its own, for the hits this read keeps
        found = await _pass1(st, query, start, end, EarliestMessages(sys.maxsize))
        hits = _earliest_messages(st, found.hits())
    in_window = st.plan.chosen
    st.hits.update(e.raw for e in hits)
    st.hit_ids.update(e.queue_id for e in hits if e.queue_id is not None)
    st.events.extend(e for e in hits if e.queue_id is None)  # pre-queue rejects are complete
    await _connections(st, in_window, [e for e in hits if e.queue_id is None])
    st.wanted.update(e.queue_id for e in hits if e.queue_id is not None)
    if query.kind is TargetKind.QUEUE_ID:
        st.wanted.update(e.new_queue_id for e in hits if e.new_queue_id == query.target)
    region_bytes = int(st.source.limits.pass2_region_mb * 1024 * 1024)
    regions = followup.regions(hits, in_window, region_bytes)
    await trace_wanted(st, start, in_window, regions, stage="pass2")
    if not hits and not st.truncated:
        with timings.phase("nearmiss", st.source.name):
            await _look_outside(st, query, in_window)
            if not st.other_times and not st.other_days:
                st.similar = await nearmiss.similar_addresses(
                    st.source, in_window, query, start, end
                )


class _Before:
    """What pass 1 adds to a server's state, as it was before it, to read pass 1 again."""

    def __init__(self, st: ServerState) -> None:
        self.lines, self.truncated = st.lines, st.truncated
        self.sizes = (len(st.connections), len(st.other_role), len(st.problems))
        self.other_times, self.other_days = set(st.other_times), set(st.other_days)

    def restore(self, st: ServerState) -> None:
        st.lines, st.truncated = self.lines, self.truncated
        del st.connections[self.sizes[0] :], st.other_role[self.sizes[1] :]
        del st.problems[self.sizes[2] :]
        st.other_times, st.other_days = set(self.other_times), set(self.other_days)


async def _pass1(
    st: ServerState,
    query: Query,
    start: datetime | None,
    end: datetime | None,
    found: EarliestMessages,
) -> EarliestMessages:
    """Pass 1: the lines naming the target; its hits in the window go to `found`."""
    asked_days = _asked_days(query)
    search = st.source.planned_grep(
        lambda files: [f for f in files if f.covers(start, end)],
        [query.needle],
        ignore_case=query.ignore_case,
        with_offsets=True,
        problems=st.problems,
        window=(start, end),
        plan=st.plan,
    )
    with timings.phase("list_pass1", st.source.name):
        async with contextlib.aclosing(counted(st, search)) as batches:
            async for batch in batches:
                for event in batch:
                    if not matches(query, event):
                        if within_window(event, start, end):
                            _note_stray(st, query, event)
                        continue
                    if within_window(event, start, end):
                        if event.queue_id is None and event.kind in _SESSION_KINDS:
                            _note_stray(st, query, event)  # the client's session, not a message
                        else:
                            found.add(event)
                    elif event.timestamp is not None:
                        _note_elsewhere(st, query, event.timestamp, asked_days)
    st.files = st.plan.listed  # this question's listing (another may have listed since)
    st.searched.update(f.path for f in st.plan.chosen)
    return found


_SESSION_KINDS = (EventKind.CONNECT, EventKind.DISCONNECT)


def _asked_days(query: Query) -> set[date]:
    """The days (asker's zone) a query with a time of day is about; empty for whole days."""
    if query.start is None or query.end is None:
        return set()
    start, end = query.start.astimezone(query.zone), query.end.astimezone(query.zone)
    if start.time() == time_of_day(0) and end.time() == time_of_day(0):
        return set()  # whole days: another time is another day
    first, last = start.date(), (end - timedelta(microseconds=1)).date()
    return {first, last}


def _note_stray(st: ServerState, query: Query, event: LogEvent) -> None:
    kind = nearmiss.classify_stray(query, event)
    if kind == "connection" and len(st.connections) < 50:
        st.connections.append(event.raw)
    elif kind == "role" and len(st.other_role) < 50:
        st.other_role.append(event.raw)


async def _connections(st: ServerState, files: list[LogFile], unqueued: list[LogEvent]) -> None:
    """A before-queue filter's proxy-accept/proxy-reject names no client: the same smtpd
    process's connect from / client= lines do. Fetch those of each such process (by PID)."""
    pids = {e.pid for e in unqueued if e.client_ip is None and e.pid is not None}
    if not pids:
        return
    patterns = [
        f"[{pid}]: {what}" for pid in sorted(pids) for what in ("connect from ", "NOQUEUE: client=")
    ]
    # only lines before a hit of the same process: its connection, not a later one
    last: dict[tuple[str | None, str | None, int | None], int] = {}
    for e in unqueued:
        key = (e.path, e.program, e.pid)
        last[key] = max(last.get(key, -1), e.offset if e.offset is not None else 2**62)
    found = []
    async for event in read(st, files, patterns, with_offsets=True):
        if event.kind not in START_KINDS | {EventKind.CONNECT}:
            continue
        if (event.offset or 0) < last.get((event.path, event.program, event.pid), -1):
            found.append(event)
    # before the hits: equal time stamps keep this order when the trace groups them
    st.events[:0] = found


def _earliest_messages(st: ServerState, hits: list[LogEvent]) -> list[LogEvent]:
    """Only the first `max_messages` queue IDs (by time) are traced: an answer shows no more,
    and tracing thousands of messages nobody will see is most of a broad query's cost."""
    first: dict[str, float] = {}
    for e in hits:
        if e.queue_id is not None:
            stamp = e.timestamp.timestamp() if e.timestamp else float("-inf")
            first[e.queue_id] = min(first.get(e.queue_id, stamp), stamp)
    limit = st.source.limits.max_messages
    if len(first) <= limit:
        return hits
    st.untraced = len(first) - limit
    keep = set(sorted(first, key=first.__getitem__)[:limit])
    return [e for e in hits if e.queue_id is None or e.queue_id in keep]


async def _look_outside(st: ServerState, query: Query, searched: list[LogFile]) -> None:
    """Nothing in the window: does the target appear on other days? (evidence for the diagnosis)"""
    others = [f for f in st.files if f.path not in {s.path for s in searched}]
    if not others:
        return
    asked_days = _asked_days(query)
    async for event in read(st, others, [query.needle], ignore_case=query.ignore_case):
        if matches(query, event) and event.timestamp is not None:
            _note_elsewhere(st, query, event.timestamp, asked_days)


def _note_elsewhere(st: ServerState, query: Query, stamp: datetime, asked_days: set[date]) -> None:
    """The target outside the window: the asked day at another hour, or another day."""
    day = stamp.astimezone(query.zone).date()
    if day in asked_days:
        st.other_times.add(stamp)
    else:
        st.other_days.add(day.isoformat())
