"""Pass 2 on one server: every line of the wanted queue IDs, then the follow-up files.

Strategy: grep the wanted IDs in the files pass 1 searched (in large files first only the
regions around pass 1's hits; an ID whose life is not whole there is read in full); then follow
messages still open into later files and those whose start is missing into earlier ones, as far
as Postfix can keep them (bot/followup.py). A line "X: ... queued as WANTED" names the previous
hop's queue ID on this server, which is traced too. Short queue IDs are reused: only the lives
that hold a pass-1 hit count for an ID pass 1 found.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from bot import followup, hops, timings
from bot.search_state import ServerState, read
from bot.sources.source import LogFile
from parsers.models import FINAL_STATUSES, Message, Status
from parsers.trace import START_KINDS, group_messages


def other_life(st: ServerState, m: Message) -> bool:
    """Short queue IDs are reused: for an ID pass 1 found, only the lives holding a hit matter
    (an ID reached by a link has no hits, and all its lives count)."""
    return m.queue_id in st.hit_ids and st.hits.isdisjoint(m.lines)


def _lives(st: ServerState, ids: set[str]) -> list[Message]:
    """The lives read so far of these queue IDs that matter, in time order."""
    lives = group_messages([e for e in st.events if e.queue_id in ids])
    return [m for m in lives if not other_life(st, m)]


def _whole_lives(st: ServerState, ids: list[str]) -> set[str]:
    """Queue IDs whose life that matters was read whole, from its first line to `removed`."""
    whole = set(ids)
    for m in _lives(st, whole):
        if m.queue_id not in whole:
            continue
        ended = any(line.endswith(f"{m.queue_id}: removed") for line in m.lines)
        if m.started_before_logs or not ended:
            whole.discard(m.queue_id)
    return whole


async def trace_wanted(
    st: ServerState,
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
        before = len(st.events)
        if regions:
            near = [f for f in first if f.path in regions]
            await _grep_ids(st, first, todo, regions)  # the others whole, in the same command
            partial = sorted(set(todo) - _whole_lives(st, todo))
            if partial:
                await _grep_ids(st, near, partial)
        else:
            await _grep_ids(st, first, todo)
        if files is None:
            await _not_around_handover(st, first, todo, before)
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
        await trace_wanted(st, start, stage=stage)


def _hop_files(st: ServerState, ids: list[str], start: datetime | None) -> list[LogFile]:
    """The files a hop round greps for `ids`: around their hand-over times when all are known,
    else every file from the window's start."""
    when = [st.handovers.get(qid) for qid in ids]
    known = [t for t in when if t is not None]
    if len(known) < len(when):
        return [f for f in st.files if f.covers(start, None)]
    return followup.hop_files(st.files, known, st.source.server.queue_lifetime_delta)


async def _not_around_handover(
    st: ServerState, first: list[LogFile], ids: list[str], before: int
) -> None:
    """Hop IDs this round found no line of in the files around their hand-over (the two
    servers' clocks disagree by more than the margin, or a file was rotated at an odd time) are
    looked for once more, a day either side, rather than taken for a mail that went somewhere
    not searched. Only the round's own new lines count as found (`before`: how many events
    there were before it): a "queued as ID" line read earlier, or another life of a reused ID,
    is not the hop's."""
    new = st.events[before:]
    found = {e.queue_id for e in new} | {e.new_queue_id for e in new if e.queue_id}
    missing = [qid for qid in ids if qid not in found]
    when = [t for qid in missing if (t := st.handovers.get(qid)) is not None]
    if not missing or len(when) < len(missing):  # an unknown hand-over: all files were read
        return
    searched = {f.path for f in first}
    lifetime = st.source.server.queue_lifetime_delta
    wider = followup.hop_files(st.files, when, lifetime, followup.SKEW_MARGIN)
    rest = [f for f in wider if f.path not in searched]
    if rest:
        await _grep_ids(st, rest, missing)


async def _widen(st: ServerState, searched: list[LogFile], ids: set[str]) -> None:
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


def _open_lives(st: ServerState, ids: set[str]) -> list[Message]:
    latest = {m.queue_id: m for m in _lives(st, ids)}  # the last life that matters decides
    return [m for qid, m in latest.items() if qid and m.status not in FINAL_STATUSES]


def _unstarted_ids(st: ServerState, ids: set[str]) -> set[str]:
    """IDs with lines here but not their first: their start lies in an earlier file. An ID with
    no line of its own here (a hop looked for by the "queued as" naming it) is no message here."""
    started = {e.queue_id for e in st.events if e.kind in START_KINDS}
    seen = {e.queue_id for e in st.events if e.queue_id in ids}
    return {qid for qid in ids if qid in seen and qid not in started}


async def _grep_ids(
    st: ServerState,
    files: list[LogFile],
    ids: list[str],
    regions: dict[str, list[tuple[int, int]]] | None = None,
) -> None:
    if not files:
        return
    wanted = set(ids)
    seen = {(e.path, e.raw) for e in st.events}
    async for event in read(st, files, ids, regions=regions):
        key = (event.path, event.raw)
        if key in seen:
            continue
        if event.queue_id in wanted or (event.new_queue_id in wanted and event.queue_id):
            seen.add(key)
            st.events.append(event)
    st.searched.update(f.path for f in files)


def relevant(
    messages: Iterable[Message], states: dict[str, ServerState], hosts: dict[str, str]
) -> list[Message]:
    """Drop messages that pass 2 pulled in only because a line mentioned a wanted ID, and other
    lives of a reused queue ID: an ID found by pass 1 keeps only the lives with a hit. `hosts`
    maps a message's host to the server searched (a central log host's lines name others)."""

    def wanted(m: Message) -> bool:
        st = states.get(hosts.get(m.host, m.host))
        return st is not None and m.queue_id in st.wanted and not other_life(st, m)

    return [m for m in messages if m.queue_id is None or wanted(m)]
