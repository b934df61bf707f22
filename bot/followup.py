"""Pass 2's plan: which bytes and which other files may still hold a wanted message's lines.

Strategy: pure choices over the listed files, no I/O. In large plain files pass 2 reads first
only a few megabytes around pass 1's hits (`regions`). A message still open at the last line
read is followed into later files, but only as far as Postfix can keep it: its queue lifetime
after it arrived, plus the last retry's back-off and the bounce that expiry causes
(`later_files`). A message whose start is missing is looked for in earlier files only as far
back as it could have arrived (`earlier_files`). Each group is grepped in one remote command.
A hop (a queue ID another server's line named) is looked for only from shortly before its
hand-over to its server's queue lifetime after it (`hop_files`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from bot.sources.source import LogFile
from parsers.models import LogEvent

# After the queue lifetime ran out, the message is returned at its next delivery attempt:
# at most Postfix's maximal_backoff_time (4000 s) later, plus a queue run (300 s). Two hours
# covers that and the bounce notice it logs.
EXPIRY_MARGIN = timedelta(hours=2)
# A hop not found around its hand-over is looked for once more this far either side: the two
# servers' clocks may disagree (badly), or a file was rotated at an odd hour.
SKEW_MARGIN = timedelta(days=1)
# A hop's first line can come a little before the line that named it: the receiving server logs
# its queue ID before the sender logs "queued as", and two servers' clocks differ a little.
HANDOVER_MARGIN = timedelta(minutes=15)


def regions(
    hits: Sequence[LogEvent], files: Sequence[LogFile], region_bytes: int
) -> dict[str, list[tuple[int, int]]]:
    """Byte ranges around pass 1's hits in large plain files, merged; small files stay whole.

    A message's lines are usually seconds apart, so a few megabytes around the line that named
    the target (a quarter before, the rest after) nearly always hold its whole life.
    """
    if region_bytes <= 0:
        return {}
    sizes = {f.path: f.size for f in files}
    before, after = region_bytes // 4, region_bytes - region_bytes // 4
    spans: dict[str, list[tuple[int, int]]] = {}
    for e in hits:
        if e.path is not None and e.offset is not None:
            spans.setdefault(e.path, []).append((max(0, e.offset - before), e.offset + after))
    found: dict[str, list[tuple[int, int]]] = {}
    for path, ranges in spans.items():
        merged: list[list[int]] = []
        for begin, end in sorted(ranges):
            if merged and begin <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([begin, end])
        total = sum(end - begin for begin, end in merged)
        if total < sizes.get(path, 0) // 2:
            found[path] = [(begin, end - begin) for begin, end in merged]
    return found


def beyond(files: Sequence[LogFile], searched: set[str]) -> tuple[list[LogFile], list[LogFile]]:
    """The files after the last searched one (oldest first) and before the first (newest first)."""
    positions = [i for i, f in enumerate(files) if f.path in searched]
    if not positions:
        return [], []
    later = [f for f in files[max(positions) + 1 :] if f.path not in searched]
    earlier = [f for f in files[: min(positions)][::-1] if f.path not in searched]
    return later, earlier


def later_files(
    files: Sequence[LogFile], arrived: datetime | None, lifetime: timedelta | None
) -> list[LogFile]:
    """The later files that can still hold lines of a message that arrived at `arrived`: those
    starting before its lifetime (and the expiry's margin) ran out. Unknown: all of them."""
    if arrived is None or lifetime is None:
        return list(files)
    last = arrived + lifetime + EXPIRY_MARGIN
    return [f for f in files if f.first_seen is None or f.first_seen <= last]


def earlier_files(
    files: Sequence[LogFile], seen: datetime | None, lifetime: timedelta
) -> list[LogFile]:
    """The earlier files that can hold the start of a message first seen at `seen`: those
    written to after it could have arrived (its lifetime, and the margin, before)."""
    if seen is None:
        return list(files)
    first = seen - lifetime - EXPIRY_MARGIN
    return [f for f in files if f.mtime >= first]


def hop_files(
    files: Sequence[LogFile],
    handovers: Iterable[datetime],
    lifetime: timedelta,
    margin: timedelta = HANDOVER_MARGIN,
) -> list[LogFile]:
    """The files that can hold the lines of hops handed over at `handovers`: a hop's message
    starts at its hand-over (less `margin`, for clocks that disagree) and is gone a queue
    lifetime (and the expiry's margin) after it. A message still open at the end is followed
    like any other."""
    spans = [(t - margin, t + lifetime + EXPIRY_MARGIN + margin) for t in handovers]
    return [f for f in files if any(f.covers(begin, end) for begin, end in spans)]
