"""The client's side of pass 2 riding in pass 1's command (`riding`): a question's plan on a
source, whether its pass 2 may ride, and pass 1's lines told apart from pass 2's.

Strategy: pass 2 rides only where it costs less than the round trip it saves: one chunk of
patterns, awk on the server, not the journal, and no more to read whole than `pass2_ahead_mb`
(large plain files are read in ranges around the hits). Pass 1's lines are passed on as they
come; pass 2's, after pass 1's end mark, are kept in the question's `Plan` when they finished.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field, replace

from bot.errors import RideIncomplete, SourceError
from bot.settings import Limits, ServerConfig
from bot.sources import commands, file_readers, grep_commands, riding
from bot.sources.log_files import FileListing, LogFile

log = logging.getLogger(__name__)
# how much larger a compressed log is read than stored (gzip shrinks Postfix logs ~8 to 15 x):
# a ride's budget counts what grep reads
COMPRESSION_RATIO = 8


@dataclass
class Plan:
    """One question's pass 1 on a source, filled by `planned_grep` (a source serves several
    questions at once, so this is the question's, not the source's): the files its listing
    found and those it chose, pass 2's lines fetched with it (for `grep`), and whether pass 2
    may ride."""

    listed: list[LogFile] = field(default_factory=list)
    chosen: list[LogFile] = field(default_factory=list)
    ahead: riding.Ahead | None = None
    ride: bool = True


def ride_for(
    server: ServerConfig,
    limits: Limits,
    tools: commands.Tools,
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
    region = int(limits.pass2_region_mb * 1024 * 1024) if with_offsets else 0
    large = {f.path for f in files if file_readers.is_plain(f.path) and 0 < 2 * region < f.size}
    # a compressed file is read decompressed: count what grep reads, not what the disk holds
    whole = sum(
        f.size * (1 if file_readers.is_plain(f.path) else COMPRESSION_RATIO)
        for f in files
        if f.path not in large
    )
    if (
        not tools.awk
        or server.source == "journald"
        or len(patterns) > grep_commands.MAX_PATTERNS
        or limits.pass2_ahead_mb <= 0
        or whole > limits.pass2_ahead_mb * 1024 * 1024
    ):
        return None
    return riding.Ride(
        max_ids=min(grep_commands.MAX_PATTERNS, 2 * limits.max_messages),
        region_bytes=region,
        sizes={f.path: f.size for f in files},
        large=frozenset(large),
        days=days,
        # what is left of the command's time for pass 2, a second for the `timeout -k` of
        # pass 2 and one for the listing before it (`riding.both_passes`)
        seconds=max(0, int(limits.command_timeout) - 2),
    )


async def pass1_lines(
    output: AsyncGenerator[list[str], None],
    paths: list[str],
    plan: Plan,
    listing: FileListing,
) -> AsyncGenerator[list[str], None]:
    """Pass 1's lines of a command with pass 2 after them; pass 2 is kept in `plan` when it
    finished (`riding.PASS2_END`). Without pass 1's end mark its lines may be cut: raises
    RideIncomplete (the caller reads pass 1 again without riding), and the server's tools in
    `listing` lose awk until the next probe."""
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
            try:
                async for more in batches:
                    rest += more
            except SourceError as exc:  # pass 1 is whole: only the ride's pass 2 is lost
                log.info("ride_dropped server=%s reason=%s", listing.name, exc.reason)
                return
            break
    if rest is None:
        log.warning(
            "ride_failed server=%s: awk on the server did not finish; pass 1 is read again"
            " without it, and later questions there do without it",
            listing.name,
        )
        if listing.tools is not None:  # a probe again (a new connection) may find it working
            listing.tools = replace(listing.tools, awk=False)
        raise RideIncomplete(listing.name, "pass 1's output through awk did not end well")
    if rest[:1] != [riding.PASS2_MARK] or rest[-1:] != [riding.PASS2_END]:
        if rest:
            log.debug("%s: pass 2 did not finish in pass 1's command", listing.name)
        return
    ahead = riding.Ahead(paths, rest[1:-1])
    if ahead.ids:
        plan.ahead = ahead
