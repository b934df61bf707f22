"""Plan and fetch: which files on which servers, two grep passes, hops, then the trace.

Strategy, per server and all servers at once:
  plan   list the server's log files with the span each covers; keep those that overlap the
         query window (so cost follows the window, not the retention);
  pass 1 grep the needle (address, queue ID, ...) in those files; keep the lines that really
         name the target within the window; their queue IDs are the messages we want;
  pass 2 grep those queue IDs in the same files (in big files first only a few megabytes
         around each hit); then later files for messages with no final state yet (deferred,
         held), as far as the queue lifetime reaches, and earlier files for those whose start
         lies before (see bot/followup.py: the plan of pass 2);
  hops   a delivery that says "queued as NEWID" to another configured server continues there
         (and a message received from a configured server started there): trace NEWID on that
         server the same way, as far as the hops go, never twice (see bot/hops.py).
Every server's failure becomes a `SourceFailure` line; the others' results stay complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import date, datetime, timedelta
from datetime import time as time_of_day
from typing import Any

from bot import followup, hops, nearmiss, timings
from bot.diagnose import diagnose
from bot.earliest import EarliestMessages
from bot.errors import MailtraceError, SourceError, UsageError
from bot.query import Query, TargetKind
from bot.result import FileCoverage, NearMisses, SearchResult, SourceCoverage, SourceFailure
from bot.settings import Settings
from bot.sources.source import LogFile, LogSource
from parsers.i18n import ENGLISH, Translator
from parsers.journey import build_journeys
from parsers.models import FINAL_STATUSES, EventKind, LogEvent, Message, Status
from parsers.trace import START_KINDS, group_messages

log = logging.getLogger(__name__)


class _ServerState:
    """What one server's search has gathered so far."""

    def __init__(self, source: LogSource) -> None:
        self.source = source
        self.files: list[LogFile] = []
        self.searched: set[str] = set()
        self.events: list[LogEvent] = []
        self.wanted: set[str] = set()  # queue IDs to trace on this server
        self.traced: set[str] = set()
        self.handovers: dict[str, datetime | None] = {}  # hop ID -> when it was handed over
        self.lines = 0
        self.truncated = False
        self.other_days: set[str] = set()
        self.problems: list[str] = []  # files that could not be read
        self.hits: set[str] = set()  # raw lines that named the target (pass 1)
        self.hit_ids: set[str] = set()  # and their queue IDs
        self.untraced = 0  # messages found by pass 1 but beyond max_messages
        # near misses seen by pass 1 (for the diagnosis of an empty answer)
        self.other_times: set[datetime] = set()  # the asked day(s), outside the asked hours
        self.other_role: list[str] = []  # the target in a line in another role
        self.connections: list[str] = []  # the client came and went without mail
        self.similar: list[str] = []


def resolve_window(
    query: Query, settings: Settings, now: datetime
) -> tuple[datetime | None, datetime | None]:
    """The query's window, or the default (the last `default_days` days, or everything)."""
    if query.start is not None and query.end is not None:
        return query.start, query.end
    if settings.default_days is None:
        return None, None
    return now - timedelta(days=settings.default_days), None


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


def _in_window(event: LogEvent, start: datetime | None, end: datetime | None) -> bool:
    if event.timestamp is None:
        return True
    if start is not None and event.timestamp < start:
        return False
    return not (end is not None and event.timestamp >= end)


async def run_search(
    query: Query,
    settings: Settings,
    sources: Sequence[LogSource],
    *,
    now: datetime,
    progress: Callable[[str, str], None] | None = None,
    tr: Translator = ENGLISH,
) -> SearchResult:
    """Search every source for the query; never raises for one server's failure. The
    explanations in the result are worded with `tr` (the asker's language).

    `progress(server, state)` is called as each chosen server finishes its first passes
    ("answered") or fails ("failed: REASON"), for callers that show progress.
    """
    with timings.measuring() as watch:
        result = await _search(query, settings, sources, now=now, progress=progress, tr=tr)
    spent = watch.timings()
    log.debug("%s: %s", query.text, timings.describe(spent))
    return result.model_copy(update={"duration_s": spent.total_s, "timings": spent})


async def _search(
    query: Query,
    settings: Settings,
    sources: Sequence[LogSource],
    *,
    now: datetime,
    progress: Callable[[str, str], None] | None,
    tr: Translator,
) -> SearchResult:
    chosen = choose_servers(query, sources)
    start, end = resolve_window(query, settings, now)
    # Every configured server can be a hop; only the chosen ones are searched for the needle.
    states = {s.name: _ServerState(s) for s in sources}
    failures: dict[str, SourceFailure] = {}
    resolver = hops.LinkResolver(settings)
    notes: list[str] = []

    async def guarded(name: str, work: Awaitable[None], report: bool = False) -> None:
        try:
            await work
        except SourceError as exc:
            failures[name] = SourceFailure(server=name, reason=exc.reason, detail=exc.detail)
        except MailtraceError as exc:
            failures[name] = SourceFailure(server=name, reason="failed", detail=str(exc))
        if report and progress is not None:
            failed = failures.get(name)
            progress(name, f"failed: {failed.reason}" if failed else "answered")

    searching = timings.started()
    try:
        async with asyncio.timeout(settings.limits.query_timeout):
            await asyncio.gather(
                *(
                    guarded(s.name, _first_passes(states[s.name], query, start, end), report=True)
                    for s in chosen
                )
            )
            for _ in range(settings.limits.max_hops + 1):
                if not hops.plan_hops(states, resolver, failures):
                    break
                await asyncio.gather(
                    *(
                        guarded(n, _trace_wanted(st, start))
                        for n, st in states.items()
                        if n not in failures
                    )
                )
    except TimeoutError:
        notes.append(
            tr.gettext("The search stopped after {seconds:.0f} s; results are partial.").format(
                seconds=settings.limits.query_timeout
            )
        )
        for name, st in states.items():
            if name not in failures and not st.events and (st.source in chosen or st.wanted):
                failures[name] = SourceFailure(
                    server=name,
                    reason="timed out",
                    detail=tr.gettext("no answer before the query time limit"),
                )

    timings.add("search", searching)
    with timings.phase("group"):
        events, hosts = hops.events_by_host(states)
        grouped = group_messages(events, hops.host_resolver(resolver, settings, hosts), tr)
        messages = hops.confirm_links(_relevant(grouped, states, hosts), states)
    limit = settings.limits.max_messages
    found = len(messages) + sum(st.untraced for st in states.values())
    if found > limit:
        notes.append(
            tr.gettext(
                "Showing the first {limit} of {found} messages; narrow the query "
                "(a date, a time, or a full address) to see the rest."
            ).format(limit=limit, found=found)
        )
        messages = messages[:limit]
    for st in states.values():
        if st.truncated:
            notes.append(
                tr.gettext("{server}: stopped reading after {n} lines; narrow the query.").format(
                    server=st.source.name, n=st.lines
                )
            )
        unreadable = [
            tr.gettext("{path}: cannot be read by the search user").format(path=f.path)
            for f in st.files
            if not f.readable
        ]
        for problem in dict.fromkeys([*unreadable, *st.problems]):
            notes.append(
                tr.gettext("{server}: {problem}; its lines are missing from this answer.").format(
                    server=st.source.name, problem=problem
                )
            )
    with timings.phase("journeys"):
        journeys = build_journeys(messages, hops.lifetimes(settings, hosts), tr)
    result = SearchResult(
        query=query,
        window_start=start,
        window_end=end,
        messages=tuple(messages),
        journeys=tuple(journeys),
        searched=tuple(_coverage(st) for st in states.values() if st.files or st.source in chosen),
        failures=tuple(failures[n] for n in states if n in failures),
        notes=tuple(notes),
        other_days=tuple(sorted({d for st in states.values() for d in st.other_days})),
        default_days=settings.default_days if query.start is None else None,
    )
    if not messages:
        with timings.phase("diagnose"):
            near = await _near_misses(query, states, chosen, start, end)
            result = result.model_copy(update={"near": near})
            result = result.model_copy(update={"diagnosis": tuple(diagnose(result, tr))})
    return result


async def _near_misses(
    query: Query,
    states: dict[str, _ServerState],
    chosen: Sequence[LogSource],
    start: datetime | None,
    end: datetime | None,
) -> NearMisses:
    """What pass 1 saw around the target, and the servers an `on ...` left out that name it."""
    left_out = [st.source for st in states.values() if st.source not in chosen]
    others: list[str] = []
    if query.servers and left_out:
        others = await nearmiss.servers_naming(left_out, query, start, end, matches)
    every = list(states.values())
    return NearMisses(
        other_times=tuple(sorted({t for st in every for t in st.other_times})),
        other_servers=tuple(others),
        other_role=tuple(line for st in every for line in st.other_role)[: nearmiss.MAX_SAMPLES],
        similar=tuple(dict.fromkeys(s for st in every for s in st.similar)),
        connections=tuple(nearmiss.session_ends(line for st in every for line in st.connections)),
    )


def choose_servers(query: Query, sources: Sequence[LogSource]) -> list[LogSource]:
    """The sources the query names (`on mx1,mx2`), or all; unknown names are a usage error."""
    if not query.servers:
        return list(sources)
    known = {s.name: s for s in sources}
    unknown = [n for n in query.servers if n not in known]
    if unknown:
        raise UsageError(
            f"No server named {', '.join(unknown)}. Known servers: {', '.join(known) or 'none'}."
        )
    return [known[n] for n in query.servers]


async def _first_passes(
    st: _ServerState, query: Query, start: datetime | None, end: datetime | None
) -> None:
    limit = st.source.limits.max_messages
    before = (st.lines, st.truncated, len(st.connections), len(st.other_role))
    found = await _pass1(st, query, start, end, EarliestMessages(limit))
    if found.complete:
        hits = found.hits()
        if found.found > limit:
            st.untraced = found.found - limit
    else:  # lines out of time order: read pass 1 again, keeping every hit until the end
        st.lines, st.truncated = before[0], before[1]
        del st.connections[before[2] :], st.other_role[before[3] :]
        found = await _pass1(st, query, start, end, EarliestMessages(sys.maxsize))
        hits = _earliest_messages(st, found.hits())
    in_window = st.source.chosen
    st.hits.update(e.raw for e in hits)
    st.hit_ids.update(e.queue_id for e in hits if e.queue_id is not None)
    st.events.extend(e for e in hits if e.queue_id is None)  # pre-queue rejects are complete
    await _connections(st, in_window, [e for e in hits if e.queue_id is None])
    st.wanted.update(e.queue_id for e in hits if e.queue_id is not None)
    if query.kind is TargetKind.QUEUE_ID:
        st.wanted.update(e.new_queue_id for e in hits if e.new_queue_id == query.target)
    region_bytes = int(st.source.limits.pass2_region_mb * 1024 * 1024)
    regions = followup.regions(hits, in_window, region_bytes)
    await _trace_wanted(st, start, in_window, regions, stage="pass2")
    if not hits and not st.truncated:
        with timings.phase("nearmiss", st.source.name):
            await _look_outside(st, query, in_window)
            if not st.other_times and not st.other_days:
                st.similar = await nearmiss.similar_addresses(
                    st.source, in_window, query, start, end
                )


async def _pass1(
    st: _ServerState,
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
    )
    with timings.phase("list_pass1", st.source.name):
        async for event in _counted(st, search):
            if not matches(query, event):
                if _in_window(event, start, end):
                    _note_stray(st, query, event)
                continue
            if _in_window(event, start, end):
                if event.queue_id is None and event.kind in _SESSION_KINDS:
                    _note_stray(st, query, event)  # the client's session, not a message
                else:
                    found.add(event)
            elif event.timestamp is not None:
                _note_elsewhere(st, query, event.timestamp, asked_days)
    st.files = st.source.listed
    st.searched.update(f.path for f in st.source.chosen)
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


def _note_stray(st: _ServerState, query: Query, event: LogEvent) -> None:
    kind = nearmiss.classify_stray(query, event)
    if kind == "connection" and len(st.connections) < 50:
        st.connections.append(event.raw)
    elif kind == "role" and len(st.other_role) < 50:
        st.other_role.append(event.raw)


async def _connections(st: _ServerState, files: list[LogFile], unqueued: list[LogEvent]) -> None:
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
    async for event in _read(st, files, patterns, with_offsets=True):
        if event.kind not in START_KINDS | {EventKind.CONNECT}:
            continue
        if (event.offset or 0) < last.get((event.path, event.program, event.pid), -1):
            found.append(event)
    # before the hits: equal time stamps keep this order when the trace groups them
    st.events[:0] = found


def _earliest_messages(st: _ServerState, hits: list[LogEvent]) -> list[LogEvent]:
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


async def _look_outside(st: _ServerState, query: Query, searched: list[LogFile]) -> None:
    """Nothing in the window: does the target appear on other days? (evidence for the diagnosis)"""
    others = [f for f in st.files if f.path not in {s.path for s in searched}]
    if not others:
        return
    asked_days = _asked_days(query)
    async for event in _read(st, others, [query.needle], ignore_case=query.ignore_case):
        if matches(query, event) and event.timestamp is not None:
            _note_elsewhere(st, query, event.timestamp, asked_days)


def _note_elsewhere(st: _ServerState, query: Query, stamp: datetime, asked_days: set[date]) -> None:
    """The target outside the window: the asked day at another hour, or another day."""
    day = stamp.astimezone(query.zone).date()
    if day in asked_days:
        st.other_times.add(stamp)
    else:
        st.other_days.add(day.isoformat())


def _other_life(st: _ServerState, m: Message) -> bool:
    """Short queue IDs are reused: for an ID pass 1 found, only the lives holding a hit matter
    (an ID reached by a link has no hits, and all its lives count)."""
    return m.queue_id in st.hit_ids and st.hits.isdisjoint(m.lines)


def _lives(st: _ServerState, ids: set[str]) -> list[Message]:
    """The lives read so far of these queue IDs that matter, in time order."""
    lives = group_messages([e for e in st.events if e.queue_id in ids])
    return [m for m in lives if not _other_life(st, m)]


def _whole_lives(st: _ServerState, ids: list[str]) -> set[str]:
    """Queue IDs whose life that matters was read whole, from its first line to `removed`."""
    whole = set(ids)
    for m in _lives(st, whole):
        if m.queue_id not in whole:
            continue
        ended = any(line.endswith(f"{m.queue_id}: removed") for line in m.lines)
        if m.started_before_logs or not ended:
            whole.discard(m.queue_id)
    return whole


async def _trace_wanted(
    st: _ServerState,
    start: datetime | None,
    files: list[LogFile] | None = None,
    regions: dict[str, list[tuple[int, int]]] | None = None,
    stage: str = "hops",
) -> None:
    """Pass 2: every line of the wanted queue IDs; widen to other files for open messages.

    With `regions` (large plain files), only the bytes around pass 1's hits are read first; a
    queue ID whose whole life (first line to `removed`) is not inside them is read in full.
    Its time counts as `stage` (pass 2 after pass 1, or a hop round), the widening as
    "followup".
    """
    todo = sorted(st.wanted - st.traced)
    if not todo:
        return
    st.traced.update(todo)
    with timings.phase(stage, st.source.name):
        if not st.files:  # a server reached only as a hop
            st.files = await st.source.list_files()
        first = files if files is not None else _hop_files(st, todo, start)
        if regions:
            near = [f for f in first if f.path in regions]
            await _grep_ids(st, first, todo, regions)  # the others whole, in the same command
            partial = sorted(set(todo) - _whole_lives(st, todo))
            if partial:
                await _grep_ids(st, near, partial)
        else:
            await _grep_ids(st, first, todo)
    with timings.phase("followup", st.source.name):
        await _widen(st, first, set(todo))
    # A line "X: ... queued as WANTED" names the previous hop's queue ID on this server.
    back = [
        e
        for e in st.events
        if e.new_queue_id in st.wanted and e.queue_id and e.queue_id not in st.traced
    ]
    for e in back:
        assert e.queue_id is not None
        hops.want(st, e.queue_id, e.timestamp)
    if back:
        await _trace_wanted(st, start, stage=stage)


def _hop_files(st: _ServerState, ids: list[str], start: datetime | None) -> list[LogFile]:
    """The files a hop round greps for `ids`: around their hand-over times when all are known,
    else every file from the window's start."""
    when = [st.handovers.get(qid) for qid in ids]
    known = [t for t in when if t is not None]
    if len(known) < len(when):
        return [f for f in st.files if f.covers(start, None)]
    return followup.hop_files(st.files, known, st.source.server.queue_lifetime_delta)


async def _widen(st: _ServerState, searched: list[LogFile], ids: set[str]) -> None:
    """Follow messages out of the searched files: those still open (deferred, held, in flight)
    into later files, as far as their queue lifetime reaches; those whose start is missing into
    earlier files, as far back as they could have arrived. One remote command for each."""
    later, earlier = followup.beyond(st.files, {f.path for f in searched})
    lifetime = st.source.server.queue_lifetime_delta
    open_lives = _open_lives(st, ids) if later else []
    if open_lives and not st.truncated:
        held = any(m.status is Status.HELD for m in open_lives)  # no lifetime in the hold queue
        arrivals = [m.first_seen for m in open_lives]
        arrived = None if None in arrivals else max(a for a in arrivals if a is not None)
        files = followup.later_files(later, arrived, None if held else lifetime)
        await _grep_ids(st, files, sorted({m.queue_id for m in open_lives if m.queue_id}))
    unstarted = _unstarted_ids(st, ids) if earlier else set()
    if unstarted and not st.truncated:
        stamps = [e.timestamp for e in st.events if e.queue_id in unstarted and e.timestamp]
        files = followup.earlier_files(earlier, min(stamps, default=None), lifetime)
        await _grep_ids(st, files, sorted(unstarted))


def _open_lives(st: _ServerState, ids: set[str]) -> list[Message]:
    latest = {m.queue_id: m for m in _lives(st, ids)}  # the last life that matters decides
    return [m for qid, m in latest.items() if qid and m.status not in FINAL_STATUSES]


def _unstarted_ids(st: _ServerState, ids: set[str]) -> set[str]:
    """IDs with lines here but not their first: their start lies in an earlier file. An ID with
    no line of its own here (a hop looked for by the "queued as" naming it) is no message here."""
    started = {e.queue_id for e in st.events if e.kind in START_KINDS}
    seen = {e.queue_id for e in st.events if e.queue_id in ids}
    return {qid for qid in ids if qid in seen and qid not in started}


async def _read(
    st: _ServerState, files: list[LogFile], patterns: list[str], **options: Any
) -> AsyncIterator[LogEvent]:
    """grep on this server, counting lines against the cap."""
    if st.truncated or not files:
        return
    search = st.source.grep(files, patterns, problems=st.problems, **options)
    async for event in _counted(st, search):
        yield event


async def _counted(
    st: _ServerState, search: AsyncGenerator[LogEvent, None]
) -> AsyncIterator[LogEvent]:
    """The events of a search, counted against the cap. At the cap it stops, and the remote
    command is ended at once (aclosing), not whenever the generator is collected."""
    async with contextlib.aclosing(search) as events:
        async for event in events:
            if not _count(st):
                return
            yield event


async def _grep_ids(
    st: _ServerState,
    files: list[LogFile],
    ids: list[str],
    regions: dict[str, list[tuple[int, int]]] | None = None,
) -> None:
    if not files:
        return
    wanted = set(ids)
    seen = {(e.path, e.raw) for e in st.events}
    async for event in _read(st, files, ids, regions=regions):
        key = (event.path, event.raw)
        if key in seen:
            continue
        if event.queue_id in wanted or (event.new_queue_id in wanted and event.queue_id):
            seen.add(key)
            st.events.append(event)
    st.searched.update(f.path for f in files)


def _count(st: _ServerState) -> bool:
    st.lines += 1
    if st.lines > st.source.limits.max_lines:
        st.truncated = True
        return False
    return True


def _relevant(
    messages: Iterable[Message], states: dict[str, _ServerState], hosts: dict[str, str]
) -> list[Message]:
    """Drop messages that pass 2 pulled in only because a line mentioned a wanted ID, and other
    lives of a reused queue ID: an ID found by pass 1 keeps only the lives with a hit. `hosts`
    maps a message's host to the server searched (a central log host's lines name others)."""

    def wanted(m: Message) -> bool:
        st = states.get(hosts.get(m.host, m.host))
        return st is not None and m.queue_id in st.wanted and not _other_life(st, m)

    return [m for m in messages if m.queue_id is None or wanted(m)]


def _coverage(st: _ServerState) -> SourceCoverage:
    return SourceCoverage(
        server=st.source.name,
        files=tuple(
            FileCoverage(
                path=f.path,
                first_seen=f.first_seen,
                last_seen=f.mtime,
                searched=f.path in st.searched and f.readable,
                readable=f.readable,
            )
            for f in st.files
        ),
        lines_read=st.lines,
    )
