"""Repeated hours: which lines of a DST fall-back's repeated hour belong to its second pass.

Strategy: a yearless, zoneless syslog time such as ``Oct 25 02:30:00`` in Europe/Berlin names two
instants when summer time ends. Reading a line alone cannot tell which, and deciding from the
lines a query happened to fetch makes a line's time depend on the query. Instead the caller
fetches every line of the repeated hour from the server's files (oldest file first, each in its
own order) and this module finds where the wall clock steps back: that line and every later one
of the hour are the second pass. The answer depends on the files only, never on the query, and
a step back that falls between two rotated files is found the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, tzinfo

from parsers.envelope import MONTHS

# A step back by less than this is syslog jitter (two daemons a second apart), not the clock.
_STEP = 60


def fall_backs(zone: tzinfo, start: datetime, end: datetime) -> list[datetime]:
    """Local (naive) start of each repeated hour between two instants, e.g. 2026-10-25 02:00."""
    found = []
    at = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    stop = end.astimezone(UTC) + timedelta(hours=2)
    while at < stop and (stop - at) < timedelta(days=800):
        before = at.astimezone(zone).utcoffset()
        after = (at + timedelta(hours=1)).astimezone(zone).utcoffset()
        if before is not None and after is not None and after < before:
            # the clock shows this local hour again right after the step back
            found.append((at + timedelta(hours=1)).astimezone(zone).replace(tzinfo=None))
        at += timedelta(hours=1)
    return found


def hour_prefixes(local: datetime) -> list[str]:
    """The envelope prefixes of that hour: syslog's space-padded day and postlogd's zero-padded
    one ("Oct  5 02:", "Oct 05 02:")."""
    month = next(name for name, number in MONTHS.items() if number == local.month)
    hour = f"{local.hour:02d}:"
    return list(
        dict.fromkeys([f"{month} {local.day:2d} {hour}", f"{month} {local.day:02d} {hour}"])
    )


def second_pass(lines: Iterable[str], prefixes: list[str]) -> set[str]:
    """The lines (raw text) of the repeated hour that come after the wall clock stepped back.

    `lines` are every line of the hour, in file order, oldest file first."""
    later: set[str] = set()
    latest = -1
    stepped = False
    for line in lines:
        prefix = next((p for p in prefixes if line.startswith(p)), None)
        if prefix is None:
            continue
        clock = line[len(prefix) : len(prefix) + 5]  # "MM:SS"
        try:
            seconds = int(clock[:2]) * 60 + int(clock[3:5])
        except ValueError:
            continue
        if not stepped and latest - seconds > _STEP:
            stepped = True
        latest = max(latest, seconds)
        if stepped:
            later.add(line)
    return later
