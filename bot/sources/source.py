"""A LogSource: one server's log files, listed, dated, searched and read into events.

Strategy: listing asks the runner for size, modification time and readability of every file
the globs match, then for the first line of files it has not seen yet (a rotated file never
changes, so first lines are cached by path, size and mtime). A file covers the time from its
first line to its modification time; the search plan uses that to skip files outside the query
window, so cost does not grow with retention. Grep output is 'PATH:LINE' and is parsed into
events with the file's own year guess and the server's zone.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta, tzinfo

from pydantic import BaseModel, ConfigDict

from bot.errors import NoLogFiles, RideIncomplete
from bot.settings import Limits, ServerConfig
from bot.sources import commands, riding
from bot.sources.runner import CommandRunner
from bot.timings import count_command
from parsers.clock import fall_backs, hour_prefixes, second_pass
from parsers.envelope import YearGuess, parse_envelope
from parsers.models import LogEvent
from parsers.postfix import parse_line

log = logging.getLogger(__name__)
# how much larger a compressed log is read than stored (gzip shrinks Postfix logs ~8 to 15 x):
# a ride's budget counts what grep reads
COMPRESSION_RATIO = 8


class LogFile(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str
    size: int
    mtime: datetime
    readable: bool = True
    first_seen: datetime | None = None  # time of its first line, when it could be read

    def covers(self, start: datetime | None, end: datetime | None) -> bool:
        """Could this file hold lines in [start, end)? Unknown starts count as 'maybe'."""
        if end is not None and self.first_seen is not None and self.first_seen >= end:
            return False
        return not (start is not None and self.mtime < start)


@functools.lru_cache(maxsize=64)
def _year_guess(mtime: datetime, zone: tzinfo, year: int | None) -> YearGuess:
    """One year guess per file (the same object for each of its lines, so the parser's time
    stamp cache knows it at once)."""
    return YearGuess(mtime.astimezone(zone), year)


def _in_repeated_hour(stamp: datetime | None) -> bool:
    """Does this wall-clock time name two instants (a DST fall-back's repeated hour)?"""
    if stamp is None or stamp.tzinfo is None:
        return False
    first, second = stamp.replace(fold=0).utcoffset(), stamp.replace(fold=1).utcoffset()
    return first is not None and second is not None and first > second


class _RepeatedHours:
    """`_in_repeated_hour`, worked out once per wall-clock hour and zone (a log's lines come
    hour after hour; the parser shares one datetime per second, so most lines ask again about
    the very stamp before them)."""

    def __init__(self) -> None:
        self._hours: dict[tuple[object, int, int, int, int], bool] = {}
        self._last: datetime | None = None
        self._last_answer = False

    def __call__(self, stamp: datetime | None) -> bool:
        if stamp is None:
            return False
        if stamp is self._last:
            return self._last_answer
        key = (stamp.tzinfo, stamp.year, stamp.month, stamp.day, stamp.hour)
        answer = self._hours.get(key)
        if answer is None:
            answer = self._hours[key] = _in_repeated_hour(stamp)
        self._last, self._last_answer = stamp, answer
        return answer


@dataclass
class Plan:
    """One question's pass 1 on a source, filled by `planned_grep` (a source serves several
    questions at once, so this is the question's, not the source's): the files it chose,
    pass 2's lines fetched with it (for `grep`), and whether pass 2 may ride."""

    chosen: list[LogFile] = field(default_factory=list)
    ahead: riding.Ahead | None = None
    ride: bool = True


async def _once(batch: list[str]) -> AsyncGenerator[list[str], None]:
    if batch:
        yield batch


async def _chained(
    first: list[str], rest: AsyncIterator[list[str]]
) -> AsyncGenerator[list[str], None]:
    """`first`, then the batches of `rest`."""
    if first:
        yield first
    async for batch in rest:
        yield batch


def _listing_lines(batch: list[str]) -> tuple[list[str], list[str] | None]:
    """A batch split at the listing's end: (the listing's lines, the lines after the end or
    None when the listing goes on)."""
    try:
        end = batch.index(commands.LISTING_END)
    except ValueError:
        return batch, None
    return batch[:end], batch[end + 1 :]


class LogSource:
    """One configured server (or the local machine) as a source of Postfix log lines."""

    def __init__(self, server: ServerConfig, runner: CommandRunner, limits: Limits) -> None:
        self.server = server
        self.runner = runner
        self.limits = limits
        self._heads: dict[tuple[str, int, float], datetime | None] = {}
        self._head_keys: dict[tuple[str, int, float], str] = {}  # as the listing printed them
        self._files: list[LogFile] = []
        # repeated hour -> (the files it was read from, per path the lines of its second pass)
        self._repeats: dict[datetime, tuple[object, dict[str, set[str]]]] = {}
        # The server's faster tools, probed with the first listing on each connection (None:
        # not yet; set it to commands.NO_TOOLS beforehand to search with grep and the standard
        # decompressors: a local runner has no connection and is probed once).
        self.tools: commands.Tools | None = None
        self._probed_on: int | None = None  # the connection the probe ran on

    @property
    def name(self) -> str:
        return self.server.name

    def _run(self, command: str) -> AsyncGenerator[list[str], None]:
        """The runner's lines of `command` as they come, a list per chunk, counted for the
        question that sent it."""
        count_command(self.name)
        return self.runner.batches(command)

    async def _lines(self, command: str) -> AsyncIterator[str]:
        """The lines of `command` one by one (small outputs: listings, first lines)."""
        async with contextlib.aclosing(self._run(command)) as batches:
            async for batch in batches:
                for line in batch:
                    yield line

    def _connection(self) -> int | None:
        number = getattr(self.runner, "connection_number", None)
        return number if isinstance(number, int) else None

    @property
    def _probe(self) -> bool:
        """Probe the tools with this listing: never probed, or the connection is not the one
        the probe ran on (a reconnect: the server may have changed)."""
        if self.tools is None:
            return True
        return hasattr(self.runner, "connection_number") and self._connection() != self._probed_on

    @property
    def _tools(self) -> commands.Tools:
        return self.tools or commands.NO_TOOLS

    @property
    def listed(self) -> list[LogFile]:
        """The files of the last listing, oldest first."""
        return self._files

    async def list_files(self) -> list[LogFile]:
        """The log files, oldest first, each with the span of time it covers."""
        if self.server.source == "journald":
            self._files = await self._journal_days()
            return self._files
        command = commands.list_command(
            self.server.logs,
            self.limits.command_timeout,
            probe=self._probe,
            known_heads=self._known_heads(),
        )
        async with contextlib.aclosing(self._run(command)) as batches:
            listing: list[str] = []
            async for batch in batches:
                lines, after = _listing_lines(batch)
                listing += lines
                if after is not None:
                    break
        return await self._files_from(listing, read_heads=True)

    def _known_heads(self) -> list[str]:
        """The compressed files whose first line is cached (the listing skips them)."""
        return [key for (path, _, _), key in self._head_keys.items() if not commands.is_plain(path)]

    async def _files_from(self, lines: list[str], *, read_heads: bool) -> list[LogFile]:
        """The listing's lines as files. First lines not in the listing or the cache are read
        with one more command, or with `read_heads` False left unknown."""
        raw: list[tuple[str, int, float, bool]] = []
        keys: dict[tuple[str, int, float], str] = {}
        heads: dict[str, str] = {}
        for line in lines:
            if line.startswith(commands.TOOLS_PREFIX) or line == commands.TOOLS_PREFIX[0]:
                self.tools = commands.parse_tools(line)
                self._probed_on = self._connection()
                log.debug("%s: tools %s", self.name, self.tools)
                continue
            if line.startswith(commands.HEAD_PREFIX):
                path, _, first = line[len(commands.HEAD_PREFIX) :].partition("\t")
                heads[path] = first
                continue
            parts = line.split("\t", 3)
            if len(parts) != 4:
                continue
            size, mtime, readable, path = parts
            try:
                raw.append((path, int(size), float(mtime), readable == "1"))
            except ValueError:
                continue
            keys[raw[-1][:3]] = commands.head_key(size, mtime, path)
        if not raw:
            raise NoLogFiles(self.name, "nothing matches " + ", ".join(self.server.logs))
        stats = {p: (s, m) for p, s, m, _ in raw}
        for path, first in heads.items():
            if path in stats:
                self._heads[(path, *stats[path])] = self._date(first, stats[path][1])
        unknown = [p for p, s, m, r in raw if r and (p, s, m) not in self._heads]
        if unknown and read_heads:
            await self._read_heads(unknown, stats)
        current = {(p, s, m) for p, s, m, _ in raw}  # forget files that changed or went away
        self._heads = {key: value for key, value in self._heads.items() if key in current}
        self._head_keys = {key: keys[key] for key in self._heads if key in keys}
        files = [
            LogFile(
                path=path,
                size=size,
                mtime=datetime.fromtimestamp(mtime, tz=UTC),
                readable=readable,
                first_seen=self._heads.get((path, size, mtime)),
            )
            for path, size, mtime, readable in raw
        ]
        self._files = sorted(files, key=lambda f: (f.first_seen or f.mtime, f.mtime))
        return self._files

    def _date(self, first: str, mtime: float) -> datetime | None:
        # the year guess its lines get (`parse`): the same object, so the parser's time stamp
        # cache goes on with the file's lines at once
        stamp = datetime.fromtimestamp(mtime, tz=UTC)
        years = _year_guess(stamp, self.server.zone, self.server.year)
        envelope = parse_envelope(first, zone=self.server.zone, years=years)
        return envelope.timestamp if envelope else None

    async def _journal_days(self) -> list[LogFile]:
        """The journal as one pseudo file per UTC day from its first to its last entry, so the
        plan can pick days like it picks rotated files (journalctl --since/--until reads them)."""
        directory = self.server.journal_directory
        ends = []
        async for line in self._lines(
            commands.journal_ends_command(directory, self.limits.command_timeout)
        ):
            envelope = parse_envelope(line, zone=self.server.zone)
            if envelope is not None and envelope.timestamp is not None:
                ends.append(envelope.timestamp.astimezone(UTC))
        if not ends:
            where = directory or "the system journal"
            raise NoLogFiles(self.name, f"no entries in {where} (or no permission to read it)")
        first, last = min(ends), max(ends)
        days = []
        day = first.date()
        while day <= last.date():
            start = datetime.combine(day, time(0), tzinfo=UTC)
            end = start + timedelta(days=1)
            days.append(
                LogFile(
                    path=commands.journal_day_path(day.isoformat()),
                    size=0,
                    mtime=min(end, last),
                    first_seen=max(start, first),
                )
            )
            day += timedelta(days=1)
        return days

    async def _read_heads(self, paths: list[str], stats: dict[str, tuple[int, float]]) -> None:
        """Date each file by its first line; cached only once the whole read succeeded (a file
        whose first line cannot be dated is cached as "start unknown")."""
        found: dict[tuple[str, int, float], datetime | None] = {}
        for path in paths:
            size, mtime = stats[path]
            found[(path, size, mtime)] = None
        command = commands.heads_command(paths, self.limits.command_timeout, self._tools)
        async for line in self._lines(command):
            path, _, first = line.partition("\t")
            if path not in stats:
                continue
            size, mtime = stats[path]
            found[(path, size, mtime)] = self._date(first, mtime)
        self._heads.update(found)

    def grep(
        self,
        files: Sequence[LogFile],
        patterns: Sequence[str],
        *,
        ignore_case: bool = False,
        with_offsets: bool = False,
        regions: Mapping[str, Sequence[tuple[int, int]]] | None = None,
        problems: list[str] | None = None,
        ahead: bool = False,
        plan: Plan | None = None,
        days: tuple[str, ...] = (),
    ) -> AsyncGenerator[LogEvent, None]:
        """Events of every line in `files` that contains one of `patterns` (fixed strings),
        one by one (`grep_batches`' events)."""
        return _each(
            self.grep_batches(
                files,
                patterns,
                ignore_case=ignore_case,
                with_offsets=with_offsets,
                regions=regions,
                problems=problems,
                ahead=ahead,
                plan=plan,
                days=days,
            )
        )

    async def grep_batches(
        self,
        files: Sequence[LogFile],
        patterns: Sequence[str],
        *,
        ignore_case: bool = False,
        with_offsets: bool = False,
        regions: Mapping[str, Sequence[tuple[int, int]]] | None = None,
        problems: list[str] | None = None,
        ahead: bool = False,
        plan: Plan | None = None,
        days: tuple[str, ...] = (),
    ) -> AsyncGenerator[list[LogEvent], None]:
        """Events of every line in `files` that contains one of `patterns` (fixed strings), in
        lists as the lines arrive.

        `with_offsets` records each line's byte offset (plain files); `regions` limits plain
        files to byte ranges (see `commands.grep_command`). A file that could not be read is
        described in `problems` while the others are still searched. With `ahead` (pass 1),
        pass 2 comes in the same command (`riding`, its ranges around lines starting with one of
        `days`) and is kept in `plan`; a later grep of those files for queue IDs it holds, in
        the same regions, with the same `plan`, is answered from it: the same lines, no round
        trip.
        """
        readable = [f for f in files if f.readable]
        if not readable or not patterns:
            return
        paths = [f.path for f in readable]
        plain = not (ignore_case or with_offsets)
        kept = plan.ahead if plan is not None else None
        ahead_of = kept.lines_for(paths, patterns, regions) if kept else None
        if plain and ahead_of is not None:
            found = self._events(_once(ahead_of), readable, False, regions, problems)
            async with contextlib.aclosing(found) as events:
                async for batch in events:
                    yield batch
            return
        ride = self._ride(readable, patterns, with_offsets, days) if ahead and plan else None
        for chunk_start in range(0, len(patterns), commands.MAX_PATTERNS):
            chunk = patterns[chunk_start : chunk_start + commands.MAX_PATTERNS]
            script = commands.grep_script(
                paths,
                chunk,
                ignore_case=ignore_case,
                with_offsets=with_offsets,
                regions=regions,
                journal_directory=self.server.journal_directory,
                tools=self._tools,
            )
            if ride is not None:
                script = riding.both_passes(script, paths, ride, self._tools)
            lines = self._run(commands.wrap(script, self.limits.command_timeout))
            if ride is not None and plan is not None:
                lines = self._pass1_lines(lines, paths, plan)
            found = self._events(lines, readable, with_offsets, regions, problems)
            async with contextlib.aclosing(found) as events:
                async for batch in events:
                    yield batch

    def _ride(
        self,
        files: Sequence[LogFile],
        patterns: Sequence[str],
        with_offsets: bool,
        days: tuple[str, ...],
    ) -> riding.Ride | None:
        """How pass 2 may ride in pass 1's command; None: not for these files (the journal,
        patterns in several chunks, more to read whole than `pass2_ahead_mb`, no awk there)."""
        # Large plain files are read in regions around the hits (`followup.regions`), which
        # the server can work out from pass 1's offsets; the rest is read whole, so only as
        # much as costs less than a round trip when pass 2 cannot use it (other IDs, ranges).
        region = int(self.limits.pass2_region_mb * 1024 * 1024) if with_offsets else 0
        large = {f.path for f in files if commands.is_plain(f.path) and 0 < 2 * region < f.size}
        # a compressed file is read decompressed: count what grep reads, not what the disk holds
        whole = sum(
            f.size * (1 if commands.is_plain(f.path) else COMPRESSION_RATIO)
            for f in files
            if f.path not in large
        )
        if (
            not self._tools.awk
            or self.server.source == "journald"
            or len(patterns) > commands.MAX_PATTERNS
            or self.limits.pass2_ahead_mb <= 0
            or whole > self.limits.pass2_ahead_mb * 1024 * 1024
        ):
            return None
        return riding.Ride(
            max_ids=min(commands.MAX_PATTERNS, 2 * self.limits.max_messages),
            region_bytes=region,
            sizes={f.path: f.size for f in files},
            large=frozenset(large),
            days=days,
            # what is left of the command's time for pass 2, a second for the `timeout -k` of
            # pass 2 and one for the listing before it (`riding.both_passes`)
            seconds=max(0, int(self.limits.command_timeout) - 2),
        )

    async def _pass1_lines(
        self, output: AsyncGenerator[list[str], None], paths: list[str], plan: Plan
    ) -> AsyncGenerator[list[str], None]:
        """Pass 1's lines of a command with pass 2 after them; pass 2 is kept in `plan` when it
        finished (`riding.PASS2_END`). Without pass 1's end mark its lines may be cut: raises
        RideIncomplete (the caller reads pass 1 again without riding)."""
        plan.ahead = None
        async with contextlib.aclosing(output) as batches:
            rest: list[str] | None = None
            async for batch in batches:
                try:
                    mark = batch.index(riding.PASS1_END)
                except ValueError:
                    yield batch
                    continue
                if mark:
                    yield batch[:mark]
                rest = batch[mark + 1 :]
                async for more in batches:
                    rest += more
                break
        if rest is None:
            log.warning(
                "ride_failed server=%s: awk on the server did not finish; pass 1 is read again"
                " without it, and later questions there do without it",
                self.name,
            )
            if self.tools is not None:  # a probe again (a new connection) may find it working
                self.tools = replace(self.tools, awk=False)
            raise RideIncomplete(self.name, "pass 1's output through awk did not end well")
        if rest[:1] != [riding.PASS2_MARK] or rest[-1:] != [riding.PASS2_END]:
            if rest:
                log.debug("%s: pass 2 did not finish in pass 1's command", self.name)
            return
        ahead = riding.Ahead(paths, rest[1:-1])
        if ahead.ids:
            plan.ahead = ahead

    async def planned_grep(
        self,
        choose: Callable[[list[LogFile]], list[LogFile]],
        patterns: Sequence[str],
        *,
        ignore_case: bool = False,
        with_offsets: bool = False,
        problems: list[str] | None = None,
        window: tuple[datetime | None, datetime | None] = (None, None),
        plan: Plan | None = None,
    ) -> AsyncGenerator[list[LogEvent], None]:
        """List the files, `choose` those to search, grep them; `plan.chosen` are those files.
        Pass 2 rides along where it can and `plan.ride` lets it (`riding`), its ranges around
        hits in `window`'s days; `plan` keeps its lines for `grep`. The events come in lists as
        their lines arrive (`grep_batches`).

        A source that has listed before sends the listing and the grep of the files chosen from
        the last listing in one command; when this listing chooses other files (rotation, a new
        file), that grep is dropped unread and the chosen files are grepped anew. Either way the
        events are those of `grep_batches(choose(list_files()), ...)`.
        """
        plan = plan if plan is not None else Plan()
        plan.ahead = None  # never a former pass 1's pass 2
        days = riding.day_prefixes(*window, self.server.zone)
        predicted = [f.path for f in choose(self._files) if f.readable] if self._files else []
        if (
            predicted
            and self.server.source != "journald"
            and len(patterns) <= commands.MAX_PATTERNS
        ):
            ride = self._ride(
                [f for f in choose(self._files) if f.readable], patterns, with_offsets, days
            )
            ride = ride if plan.ride else None
            script = commands.grep_script(
                predicted,
                patterns,
                ignore_case=ignore_case,
                with_offsets=with_offsets,
                tools=self._tools,
            )
            if ride is not None:
                script = riding.both_passes(script, predicted, ride, self._tools)
            command = commands.list_and_grep_command(
                self.server.logs,
                script,
                self.limits.command_timeout,
                probe=self._probe,
                known_heads=self._known_heads(),
            )
            async with contextlib.aclosing(self._run(command)) as batches:
                listing: list[str] = []
                after: list[str] | None = None
                async for batch in batches:
                    lines, after = _listing_lines(batch)
                    listing += lines
                    if after is not None:
                        break
                files = await self._files_from(listing, read_heads=False)
                plan.chosen = choose(files)
                readable = [f for f in plan.chosen if f.readable]
                if [f.path for f in readable] == predicted:
                    found = _chained(after or [], batches)
                    if ride is not None:
                        found = self._pass1_lines(found, predicted, plan)
                    events = self._events(found, readable, with_offsets, None, problems)
                    async with contextlib.aclosing(events) as each:
                        async for got in each:
                            yield got
                    return
            log.debug("%s: the files to search changed since the last listing", self.name)
            if any(f.first_seen is None for f in files if f.readable):
                plan.chosen = choose(await self.list_files())  # a new file's first line
        else:
            plan.chosen = choose(await self.list_files())
        search = self.grep_batches(
            plan.chosen,
            patterns,
            ignore_case=ignore_case,
            with_offsets=with_offsets,
            problems=problems,
            ahead=plan.ride,
            plan=plan,
            days=days,
        )
        async with contextlib.aclosing(search) as events:
            async for got in events:
                yield got

    async def _events(
        self,
        output: AsyncGenerator[list[str], None],
        files: Sequence[LogFile],
        with_offsets: bool,
        regions: Mapping[str, Sequence[tuple[int, int]]] | None,
        problems: list[str] | None,
    ) -> AsyncGenerator[list[LogEvent], None]:
        """grep_command's output lines as events of `files`, a list per batch of lines."""
        by_path = {f.path: f for f in files}
        ordered = commands.longest_first(list(by_path))
        # per file: offsets in the file (plain, read whole), and its year guess
        in_file = {p: commands.is_plain(p) and not (regions and p in regions) for p in by_path}
        zone, name = self.server.zone, self.name
        years = {p: _year_guess(f.mtime, zone, self.server.year) for p, f in by_path.items()}
        repeated = _RepeatedHours()
        split_line = commands.split_grep_line
        async with contextlib.aclosing(output) as batches:
            async for lines in batches:
                events = []
                for line in lines:
                    if line.startswith(commands.PROBLEM_PREFIX):
                        if problems is not None:
                            problems.append(commands.describe_problem(line))
                        continue
                    split = split_line(line, ordered, with_offsets=with_offsets)
                    if split is None:
                        continue
                    path, offset, text = split
                    event = parse_line(
                        text,
                        source=name,
                        path=path,
                        offset=offset if in_file[path] else None,
                        zone=zone,
                        years=years[path],
                    )
                    if repeated(event.timestamp):
                        event = await self._settle_repeated_hour(event, by_path[path])
                    events.append(event)
                if events:
                    yield events

    async def _settle_repeated_hour(self, event: LogEvent, file: LogFile) -> LogEvent:
        """The offset of a line in a DST fall-back's repeated hour, decided from every line of
        that hour in the server's files (see `parsers.clock`), the same for every query."""
        stamp = event.timestamp
        assert stamp is not None
        local = stamp.replace(tzinfo=None, minute=0, second=0, microsecond=0)
        hour = next(
            (h for h in fall_backs(self.server.zone, stamp, stamp) if h == local),
            None,
        )
        if hour is None:
            return event
        later = await self._second_pass(hour)
        if event.raw in later.get(file.path, set()):
            return replace(event, timestamp=stamp.replace(fold=1))
        # read alone the line is the first pass: keep it there, the file order says so
        return replace(event, timestamp=stamp.replace(fold=0))

    async def _second_pass(self, hour: datetime) -> dict[str, set[str]]:
        zone = self.server.zone
        start = hour.replace(tzinfo=zone, fold=0)
        end = (hour + timedelta(hours=1)).replace(tzinfo=zone, fold=1)
        files = [f for f in (self._files or await self.list_files()) if f.readable]
        # by last write: a first line inside the repeated hour may misdate a file's start
        files = sorted((f for f in files if f.covers(start, end)), key=lambda f: f.mtime)
        key = tuple((f.path, f.size) for f in files)
        cached = self._repeats.get(hour)
        if cached is not None and cached[0] == key:
            return cached[1]
        prefixes = hour_prefixes(hour)
        by_path: dict[str, list[str]] = {f.path: [] for f in files}
        ordered = commands.longest_first(list(by_path))
        command = commands.grep_command(
            list(by_path), prefixes, self.limits.command_timeout, tools=self._tools
        )
        async for line in self._lines(command):
            split = commands.split_grep_line(line, ordered, with_offsets=False)
            if split is not None:
                by_path[split[0]].append(split[2])
        later = second_pass((line for f in files for line in by_path[f.path]), prefixes)
        found = {path: {line for line in lines if line in later} for path, lines in by_path.items()}
        self._repeats[hour] = (key, found)
        return found

    def parse(self, file: LogFile, text: str, offset: int | None = None) -> LogEvent:
        years = _year_guess(file.mtime, self.server.zone, self.server.year)
        return parse_line(
            text,
            source=self.name,
            path=file.path,
            offset=offset,
            zone=self.server.zone,
            years=years,
        )

    async def close(self) -> None:
        await self.runner.close()


async def _each(batches: AsyncGenerator[list[LogEvent], None]) -> AsyncGenerator[LogEvent, None]:
    """The events of `batches` one by one (closing it when closed)."""
    async with contextlib.aclosing(batches) as each:
        async for batch in each:
            for event in batch:
                yield event
