"""One server's log files: listed, each dated by its first line, and what the listing learned
about the server's faster tools.

Strategy: listing asks the runner for size, modification time and readability of every file
the globs match, with the first line of each file it has not seen yet (a rotated file never
changes, so first lines are cached by path, size and mtime, and the listing skips compressed
files whose first line is known). A file covers the time from its first line to its
modification time; the search plan uses that to skip files outside the query window, so cost
does not grow with retention. The journal is listed as one pseudo file per UTC day.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime, time, timedelta, tzinfo

from pydantic import BaseModel, ConfigDict

from bot.errors import NoLogFiles
from bot.settings import Limits, ServerConfig
from bot.sources import commands, file_readers, listing_commands
from bot.sources.batches import each
from bot.sources.runner import CommandRunner
from parsers.envelope import YearGuess, parse_envelope

log = logging.getLogger(__name__)


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
def year_guess(mtime: datetime, zone: tzinfo, year: int | None) -> YearGuess:
    """One year guess per file (the same object for each of its lines, so the parser's time
    stamp cache knows it at once)."""
    return YearGuess(mtime.astimezone(zone), year)


def listing_lines(batch: list[str]) -> tuple[list[str], list[str] | None]:
    """A batch split at the listing's end: (the listing's lines, the lines after the end or
    None when the listing goes on)."""
    try:
        end = batch.index(listing_commands.LISTING_END)
    except ValueError:
        return batch, None
    return batch[:end], batch[end + 1 :]


class FileListing:
    """The log files of one server as last listed, their first lines, and its tools."""

    def __init__(
        self,
        server: ServerConfig,
        limits: Limits,
        runner: CommandRunner,
        run: Callable[[str], AsyncGenerator[list[str], None]],
    ) -> None:
        self.server = server
        self.limits = limits
        self.runner = runner
        self._run = run  # the runner's lines of a command, counted for the question
        self._heads: dict[tuple[str, int, float], datetime | None] = {}
        self._head_keys: dict[tuple[str, int, float], str] = {}  # as the listing printed them
        self.files: list[LogFile] = []  # the last listing's, oldest first
        # The server's faster tools, probed with the first listing on each connection (None:
        # not yet; set it to commands.NO_TOOLS beforehand to search with grep and the standard
        # decompressors: a local runner has no connection and is probed once).
        self.tools: commands.Tools | None = None
        self._probed_on: int | None = None  # the connection the probe ran on

    @property
    def name(self) -> str:
        return self.server.name

    def _connection(self) -> int | None:
        number = getattr(self.runner, "connection_number", None)
        return number if isinstance(number, int) else None

    @property
    def probe(self) -> bool:
        """Probe the tools with this listing: never probed, or the connection is not the one
        the probe ran on (a reconnect: the server may have changed)."""
        if self.tools is None:
            return True
        return hasattr(self.runner, "connection_number") and self._connection() != self._probed_on

    async def list_files(self) -> list[LogFile]:
        """The log files, oldest first, each with the span of time it covers."""
        if self.server.source == "journald":
            self.files = await self._journal_days()
            return self.files
        command = listing_commands.list_command(
            self.server.logs,
            self.limits.command_timeout,
            probe=self.probe,
            known_heads=self.known_heads(),
        )
        async with contextlib.aclosing(self._run(command)) as batches:
            listing: list[str] = []
            async for batch in batches:
                lines, after = listing_lines(batch)
                listing += lines
                if after is not None:
                    break
        return await self.files_from(listing, read_heads=True)

    def known_heads(self) -> list[str]:
        """The compressed files whose first line is cached (the listing skips them)."""
        return [
            key for (path, _, _), key in self._head_keys.items() if not file_readers.is_plain(path)
        ]

    async def files_from(self, lines: list[str], *, read_heads: bool) -> list[LogFile]:
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
            if line.startswith(listing_commands.HEAD_PREFIX):
                path, _, first = line[len(listing_commands.HEAD_PREFIX) :].partition("\t")
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
            keys[raw[-1][:3]] = listing_commands.head_key(size, mtime, path)
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
        self.files = sorted(files, key=lambda f: (f.first_seen or f.mtime, f.mtime))
        return self.files

    def _date(self, first: str, mtime: float) -> datetime | None:
        # the year guess its lines get (`LogSource.parse`): the same object, so the parser's
        # time stamp cache goes on with the file's lines at once
        stamp = datetime.fromtimestamp(mtime, tz=UTC)
        years = year_guess(stamp, self.server.zone, self.server.year)
        envelope = parse_envelope(first, zone=self.server.zone, years=years)
        return envelope.timestamp if envelope else None

    async def _journal_days(self) -> list[LogFile]:
        """The journal as one pseudo file per UTC day from its first to its last entry, so the
        plan can pick days like it picks rotated files (journalctl --since/--until reads them)."""
        directory = self.server.journal_directory
        ends = []
        async for line in each(
            self._run(listing_commands.journal_ends_command(directory, self.limits.command_timeout))
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
                    path=file_readers.journal_day_path(day.isoformat()),
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
        command = listing_commands.heads_command(
            paths, self.limits.command_timeout, self.tools or commands.NO_TOOLS
        )
        async for line in each(self._run(command)):
            path, _, first = line.partition("\t")
            if path not in stats:
                continue
            size, mtime = stats[path]
            found[(path, size, mtime)] = self._date(first, mtime)
        self._heads.update(found)
