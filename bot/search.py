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
Modules: pass 1 in bot/first_pass.py, pass 2 and the follow-up in bot/second_pass.py, what
a server's search gathers in bot/search_state.py; this one runs them on every server at once.
Every server's failure becomes a `SourceFailure` line; the others' results stay complete.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from bot import hops, nearmiss, timings
from bot.diagnose import diagnose
from bot.errors import MailtraceError, SourceError, UsageError
from bot.first_pass import first_passes, matches
from bot.query import Query
from bot.result import FileCoverage, NearMisses, SearchResult, SourceCoverage, SourceFailure
from bot.search_state import ServerState
from bot.second_pass import relevant, trace_wanted
from bot.settings import Settings
from bot.sources.source import LogSource
from parsers.i18n import ENGLISH, Translator
from parsers.journey import build_journeys
from parsers.trace import group_messages

log = logging.getLogger(__name__)


def resolve_window(
    query: Query, settings: Settings, now: datetime
) -> tuple[datetime | None, datetime | None]:
    """The query's window, or the default (the last `default_days` days, or everything)."""
    if query.start is not None and query.end is not None:
        return query.start, query.end
    if settings.default_days is None:
        return None, None
    return now - timedelta(days=settings.default_days), None


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
    states = {s.name: ServerState(s) for s in sources}
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
                    guarded(s.name, first_passes(states[s.name], query, start, end), report=True)
                    for s in chosen
                )
            )
            for _ in range(settings.limits.max_hops + 1):
                if not hops.plan_hops(states, resolver, failures):
                    break
                await asyncio.gather(
                    *(
                        guarded(n, trace_wanted(st, start))
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
        messages = hops.confirm_links(relevant(grouped, states, hosts), states)
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
    states: dict[str, ServerState],
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


def _coverage(st: ServerState) -> SourceCoverage:
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
