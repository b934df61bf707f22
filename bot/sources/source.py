"""A LogSource: one server's log files searched and read into events.

Strategy: the files come from `log_files.FileListing` (listed, dated by their first lines, the
server's tools); the search plan skips files outside the query window by their dates, so cost
does not grow with retention. Grep output is 'PATH:LINE' and is parsed into events with the
file's own year guess and the server's zone; a line in a DST fall-back's repeated hour is
settled by `repeated_hours`. Pass 2 may ride in pass 1's command (`ride_plan`, `riding`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from datetime import datetime

from bot.settings import Limits, ServerConfig
from bot.sources import commands, file_readers, grep_commands, listing_commands, riding
from bot.sources.batches import chained, each, once
from bot.sources.log_files import FileListing, LogFile, listing_lines, year_guess
from bot.sources.repeated_hours import FallBacks, RepeatedHours
from bot.sources.ride_plan import Plan, pass1_lines, ride_for
from bot.sources.runner import CommandRunner
from bot.timings import count_command
from parsers.models import LogEvent
from parsers.postfix import parse_line

# the files and plans a search passes to and gets from a LogSource
__all__ = ["LogFile", "LogSource", "Plan"]

log = logging.getLogger(__name__)


class LogSource:
    """One configured server (or the local machine) as a source of Postfix log lines."""

    def __init__(self, server: ServerConfig, runner: CommandRunner, limits: Limits) -> None:
        self.server = server
        self.runner = runner
        self.limits = limits
        self._listing = FileListing(server, limits, runner, self._run)
        self._fall_backs = FallBacks(self._listing, self._run)

    @property
    def name(self) -> str:
        return self.server.name

    def _run(self, command: str) -> AsyncGenerator[list[str], None]:
        """The runner's lines of `command` as they come, a list per chunk, counted for the
        question that sent it."""
        count_command(self.name)
        return self.runner.batches(command)

    @property
    def tools(self) -> commands.Tools | None:
        """The server's faster tools, probed with the first listing on each connection (None:
        not yet; set it to commands.NO_TOOLS beforehand to search with grep and the standard
        decompressors: a local runner has no connection and is probed once)."""
        return self._listing.tools

    @tools.setter
    def tools(self, tools: commands.Tools | None) -> None:
        self._listing.tools = tools

    @property
    def _tools(self) -> commands.Tools:
        return self._listing.tools or commands.NO_TOOLS

    @property
    def listed(self) -> list[LogFile]:
        """The files of the last listing, oldest first."""
        return self._listing.files

    async def list_files(self) -> list[LogFile]:
        """The log files, oldest first, each with the span of time it covers."""
        return await self._listing.list_files()

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
        return each(
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
        files to byte ranges (see `grep_commands.grep_command`). A file that could not be read is
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
            found = self._events(once(ahead_of), readable, False, regions, problems)
            async with contextlib.aclosing(found) as events:
                async for batch in events:
                    yield batch
            return
        ride = self._ride_for(readable, patterns, with_offsets, days) if ahead and plan else None
        for chunk_start in range(0, len(patterns), grep_commands.MAX_PATTERNS):
            chunk = patterns[chunk_start : chunk_start + grep_commands.MAX_PATTERNS]
            script = grep_commands.grep_script(
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
                lines = pass1_lines(lines, paths, plan, self._listing)
            found = self._events(lines, readable, with_offsets, regions, problems)
            async with contextlib.aclosing(found) as events:
                async for batch in events:
                    yield batch

    def _ride_for(
        self,
        files: Sequence[LogFile],
        patterns: Sequence[str],
        with_offsets: bool,
        days: tuple[str, ...],
    ) -> riding.Ride | None:
        """How pass 2 may ride in pass 1's command here (`ride_plan.ride_for`)."""
        return ride_for(self.server, self.limits, self._tools, files, patterns, with_offsets, days)

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
        predicted = [f.path for f in choose(self.listed) if f.readable] if self.listed else []
        if (
            predicted
            and self.server.source != "journald"
            and len(patterns) <= grep_commands.MAX_PATTERNS
        ):
            ride = self._ride_for(
                [f for f in choose(self.listed) if f.readable], patterns, with_offsets, days
            )
            ride = ride if plan.ride else None
            script = grep_commands.grep_script(
                predicted,
                patterns,
                ignore_case=ignore_case,
                with_offsets=with_offsets,
                tools=self._tools,
            )
            if ride is not None:
                script = riding.both_passes(script, predicted, ride, self._tools)
            command = listing_commands.list_and_grep_command(
                self.server.logs,
                script,
                self.limits.command_timeout,
                probe=self._listing.probe,
                known_heads=self._listing.known_heads(),
                clocked=ride is not None,
            )
            async with contextlib.aclosing(self._run(command)) as batches:
                listing: list[str] = []
                after: list[str] | None = None
                async for batch in batches:
                    lines, after = listing_lines(batch)
                    listing += lines
                    if after is not None:
                        break
                files = await self._listing.files_from(listing, read_heads=False)
                plan.listed, plan.chosen = files, choose(files)
                readable = [f for f in plan.chosen if f.readable]
                if [f.path for f in readable] == predicted:
                    found = chained(after or [], batches)
                    if ride is not None:
                        found = pass1_lines(found, predicted, plan, self._listing)
                    events = self._events(found, readable, with_offsets, None, problems)
                    async with contextlib.aclosing(events) as each:
                        async for got in each:
                            yield got
                    return
            log.debug("%s: the files to search changed since the last listing", self.name)
            if any(f.first_seen is None for f in files if f.readable):
                plan.listed = await self.list_files()  # a new file's first line
                plan.chosen = choose(plan.listed)
        else:
            plan.listed = await self.list_files()
            plan.chosen = choose(plan.listed)
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
        ordered = grep_commands.longest_first(list(by_path))
        # per file: offsets in the file (plain, read whole), and its year guess
        in_file = {p: file_readers.is_plain(p) and not (regions and p in regions) for p in by_path}
        zone, name = self.server.zone, self.name
        years = {p: year_guess(f.mtime, zone, self.server.year) for p, f in by_path.items()}
        repeated = RepeatedHours()
        split_line = grep_commands.split_grep_line
        async with contextlib.aclosing(output) as batches:
            async for lines in batches:
                events = []
                for line in lines:
                    if line.startswith(grep_commands.PROBLEM_PREFIX):
                        if problems is not None:
                            problems.append(grep_commands.describe_problem(line))
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
                        event = await self._fall_backs.settle(event, by_path[path])
                    events.append(event)
                if events:
                    yield events

    def parse(self, file: LogFile, text: str, offset: int | None = None) -> LogEvent:
        years = year_guess(file.mtime, self.server.zone, self.server.year)
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
