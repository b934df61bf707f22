"""How each kind of log file is read as text on the server: plain, decompressed, one day of the
journal, or a byte range of a plain file.

Strategy: a reader is a shell pipeline's first part printing the file's text to stdout; the grep
and listing commands put their search or `head` after it. Compressed files are known by their
suffix, journal days by a pseudo path ("journald:2024-05-13").
"""

from __future__ import annotations

import shlex
from datetime import date, timedelta

from bot.sources.commands import NO_TOOLS, Tools

# Decompressor per suffix; each reads the file named after "--" and writes it to stdout.
DECOMPRESSORS: dict[str, tuple[str, ...]] = {
    ".gz": ("gzip", "-dc"),
    ".bz2": ("bzip2", "-dc"),
    ".xz": ("xz", "-dc"),
    ".zst": ("zstd", "-dcq"),
}
# With pigz on the server, .gz is read by it (parallel, about twice gzip's speed).
FAST_DECOMPRESSORS: dict[str, tuple[str, ...]] = {".gz": ("pigz", "-dc")}


def is_plain(path: str) -> bool:
    """A plain file: byte offsets in grep's output are offsets in the file."""
    return _suffix(path) is None and not is_journal(path)


def is_compressed(path: str) -> bool:
    """A file read through its decompressor (`DECOMPRESSORS`)."""
    return _suffix(path) is not None


def _suffix(path: str) -> str | None:
    for suffix in DECOMPRESSORS:
        if path.endswith(suffix):
            return suffix
    return None


def region_reader(path: str, start: int, length: int) -> str:
    """Bytes [start, start+length) of a plain file, without the last line, which the range may
    cut (a cut first line has no envelope and no queue ID, so it never counts). dd reads the
    range in one process: no SIGPIPE as with tail | head."""
    dd = shlex.join(
        [
            "dd",
            f"if={path}",
            "iflag=skip_bytes,count_bytes",
            f"skip={max(0, start)}",
            f"count={max(1, length)}",
            "bs=1M",
            "status=none",
        ]
    )
    return f"{dd} | sed '$d'"


JOURNAL_PREFIX = "journald:"  # pseudo path of one UTC day of the journal: "journald:2024-05-13"


def journal_day_path(day: str) -> str:
    return JOURNAL_PREFIX + day


def is_journal(path: str) -> bool:
    return path.startswith(JOURNAL_PREFIX)


def journalctl(directory: str | None, since: str | None = None, until: str | None = None) -> str:
    argv = ["journalctl", "-q", "--no-pager", "-o", "short-iso"]
    if directory:
        argv += ["-D", directory]
    if since:
        argv += ["--since", since]
    if until:
        argv += ["--until", until]
    return shlex.join(argv)


def journal_reader(path: str, directory: str | None) -> str:
    """One UTC day of the journal, as syslog-like lines with RFC 3339 times."""
    day = date.fromisoformat(path.removeprefix(JOURNAL_PREFIX))
    nxt = day + timedelta(days=1)
    return journalctl(
        directory, f"{day.isoformat()} 00:00:00 UTC", f"{nxt.isoformat()} 00:00:00 UTC"
    )


def stream_reader(path: str, tools: Tools = NO_TOOLS) -> str:
    suffix = _suffix(path)
    tool = DECOMPRESSORS[suffix] if suffix else ("cat",)
    if suffix == ".gz" and tools.pigz:
        tool = FAST_DECOMPRESSORS[suffix]
    return shlex.join([*tool, "--", path])
