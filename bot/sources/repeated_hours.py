"""A DST fall-back's repeated hour: which of its two instants a logged line is.

Strategy: syslog time stamps carry no offset, so a line stamped inside the hour that a fall-back
repeats names two instants. Which one is decided from every line of that hour in the server's
files (`parsers.clock.second_pass`), read with one grep per hour and kept for as long as those
files do not change, so every query gives the line the same offset.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from dataclasses import replace
from datetime import datetime, timedelta

from bot.sources import commands, grep_commands
from bot.sources.batches import each
from bot.sources.log_files import FileListing, LogFile
from parsers.clock import fall_backs, hour_prefixes, second_pass
from parsers.models import LogEvent


def in_repeated_hour(stamp: datetime | None) -> bool:
    """Does this wall-clock time name two instants (a DST fall-back's repeated hour)?"""
    if stamp is None or stamp.tzinfo is None:
        return False
    first, second = stamp.replace(fold=0).utcoffset(), stamp.replace(fold=1).utcoffset()
    return first is not None and second is not None and first > second


class RepeatedHours:
    """`in_repeated_hour`, worked out once per wall-clock hour and zone (a log's lines come
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
            answer = self._hours[key] = in_repeated_hour(stamp)
        self._last, self._last_answer = stamp, answer
        return answer


class FallBacks:
    """One server's repeated hours, each read once from its files."""

    def __init__(
        self, listing: FileListing, run: Callable[[str], AsyncGenerator[list[str], None]]
    ) -> None:
        self.server = listing.server
        self.limits = listing.limits
        self._listing = listing
        self._run = run
        # repeated hour -> (the files it was read from, per path the lines of its second pass)
        self._repeats: dict[datetime, tuple[object, dict[str, set[str]]]] = {}

    async def settle(self, event: LogEvent, file: LogFile) -> LogEvent:
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
        listed = self._listing.files or await self._listing.list_files()
        files = [f for f in listed if f.readable]
        # by last write: a first line inside the repeated hour may misdate a file's start
        files = sorted((f for f in files if f.covers(start, end)), key=lambda f: f.mtime)
        key = tuple((f.path, f.size) for f in files)
        cached = self._repeats.get(hour)
        if cached is not None and cached[0] == key:
            return cached[1]
        prefixes = hour_prefixes(hour)
        by_path: dict[str, list[str]] = {f.path: [] for f in files}
        ordered = grep_commands.longest_first(list(by_path))
        command = grep_commands.grep_command(
            list(by_path),
            prefixes,
            self.limits.command_timeout,
            tools=self._listing.tools or commands.NO_TOOLS,
        )
        async for line in each(self._run(command)):
            split = grep_commands.split_grep_line(line, ordered, with_offsets=False)
            if split is not None:
                by_path[split[0]].append(split[2])
        later = second_pass((line for f in files for line in by_path[f.path]), prefixes)
        found = {path: {line for line in lines if line in later} for path, lines in by_path.items()}
        self._repeats[hour] = (key, found)
        return found
