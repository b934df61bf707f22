"""Shell command lines that run where the logs are (over SSH, or locally for the demo).

Strategy: every command is one POSIX `sh` script assembled here and nowhere else, only from
validated values and configured paths, each through `shlex.quote`; patterns are fixed strings
after `-e` and paths come after `--`. The script is wrapped in `timeout` so that nothing outlives
a cancelled query, and runs under `LC_ALL=C` (bytes in, bytes out; much faster than UTF-8).
The same text runs on a server through SSH and locally through `/bin/sh -c`, so what the tests
check here is what runs everywhere.

Output formats are parsed by the functions beside the builders:
- list:  "SIZE<TAB>MTIME<TAB>READABLE<TAB>PATH" per file (find -printf, then test -r)
- heads: "PATH<TAB>FIRST LINE" per file
- grep:  "PATH:LINE" per matching line (grep -H, --label for decompressed files)
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.errors import ConfigError

# Decompressor per suffix; each reads the file named after "--" and writes it to stdout.
DECOMPRESSORS: dict[str, tuple[str, ...]] = {
    ".gz": ("gzip", "-dc"),
    ".bz2": ("bzip2", "-dc"),
    ".xz": ("xz", "-dc"),
    ".zst": ("zstd", "-dcq"),
}
_GLOB_CHARS = re.compile(r"[*?\[\]]")
_SAFE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.*?\[\]{}-]+$")
MAX_PATTERNS = 2000


@dataclass(frozen=True)
class GlobSpec:
    """A configured log glob split into a literal directory and a file-name pattern."""

    directory: str
    name_pattern: str


def split_glob(glob: str) -> GlobSpec:
    """'/var/log/mail.log*' -> ('/var/log', 'mail.log*'). Wildcards only in the file name."""
    if not glob.startswith("/"):
        raise ConfigError(f"log path {glob!r} must be absolute")
    directory, name = posixpath.split(glob)
    if not name or _GLOB_CHARS.search(directory):
        raise ConfigError(f"log path {glob!r}: wildcards are allowed in the file name only")
    if not _SAFE_NAME_PATTERN.match(name):
        raise ConfigError(f"log path {glob!r}: unusual characters in the file name pattern")
    return GlobSpec(posixpath.normpath(directory), name)


def wrap(script: str, timeout_s: float) -> str:
    """The whole script, bounded in time: `timeout` kills it even if the client went away."""
    seconds = max(1, int(timeout_s))
    # `exec`: the login shell becomes `timeout`, so the TERM that sshd delivers for a cancelled
    # query reaches it, and `timeout` passes it on to its whole process group.
    return f"exec env LC_ALL=C timeout -k 5 {seconds} sh -c {shlex.quote(script)}"


def list_command(globs: Sequence[str], timeout_s: float = 30) -> str:
    """List the files the globs match: size, modification time, readability, path."""
    finds = []
    for glob in globs:
        spec = split_glob(glob)
        finds.append(
            "find "
            + shlex.join(
                [spec.directory, "-maxdepth", "1", "-type", "f", "-name", spec.name_pattern]
            )
            + r" -printf '%s\t%T@\t%p\n'"
        )
    script = (
        "{ " + "; ".join(finds) + "; } 2>/dev/null | "
        "while IFS='\t' read -r size mtime path; do "
        'if [ -r "$path" ]; then r=1; else r=0; fi; '
        'printf \'%s\\t%s\\t%s\\t%s\\n\' "$size" "$mtime" "$r" "$path"; done'
    )
    return wrap(script, timeout_s)


def heads_command(paths: Sequence[str], timeout_s: float = 30) -> str:
    """Print the first line of each file (decompressed), to learn where each file starts."""
    parts = []
    for path in paths:
        reader = _reader(path)
        parts.append(
            "printf '%s\\t%s\\n' "
            + shlex.quote(path)
            + ' "$('
            + reader
            + ' 2>/dev/null | head -n 1)"'
        )
    return wrap("; ".join(parts) if parts else "true", timeout_s)


def grep_command(
    paths: Sequence[str],
    patterns: Sequence[str],
    timeout_s: float = 120,
    *,
    ignore_case: bool = False,
    with_offsets: bool = False,
    regions: Mapping[str, Sequence[tuple[int, int]]] | None = None,
) -> str:
    """Fixed-string grep of `patterns` over `paths`, every matching line as 'PATH:LINE'.

    `with_offsets` adds grep's byte offset ('PATH:OFFSET:LINE'; in the file for plain files).
    `regions` limits plain files to byte ranges (start, length), read with `dd`, so that pass 2
    reads a few megabytes around pass 1's hits instead of the whole file.
    Exit status follows grep: 0 some match, 1 none, 2 an error (in any file).
    """
    if not patterns:
        raise ValueError("grep needs at least one pattern")
    if len(patterns) > MAX_PATTERNS:
        raise ValueError("too many patterns for one grep")
    for pattern in patterns:
        if not pattern or "\n" in pattern or "\r" in pattern or "\0" in pattern:
            raise ValueError("patterns are single, non-empty lines")
    flags = ("-i " if ignore_case else "") + ("-b " if with_offsets else "")
    expr = flags + " ".join(f"-e {shlex.quote(p)}" for p in patterns)
    regions = regions or {}
    plain = [p for p in paths if _suffix(p) is None and p not in regions]
    streams = [(p, _reader(p)) for p in paths if _suffix(p) is not None]
    for path in paths:
        for start, length in regions.get(path, ()):
            streams.append((path, _region_reader(path, start, length)))
    # rc: 1 until something matches (0), 2 once anything failed. For a decompressor piped into
    # grep, POSIX sh has no pipefail: both exit statuses are written to fd 3 ("d<N>", "g<N>")
    # and read back through a command substitution, while grep's output goes to fd 4 (stdout).
    steps = ["rc=1", "exec 4>&1"]
    if plain:
        steps.append(
            f"grep -F -a -H {expr} -- {shlex.join(plain)}; s=$?; "
            '[ "$s" -eq 0 ] && [ "$rc" -eq 1 ] && rc=0; [ "$s" -gt 1 ] && rc=2'
        )
    for path, reader in streams:
        steps.append(
            f"r=$( {{ {{ {reader}; echo d$? >&3; }} | "
            f"grep -F -a -H --label={shlex.quote(path)} {expr} >&4; echo g$? >&3; }} 3>&1 ); "
            'case "$r" in *g0*) [ "$rc" -eq 1 ] && rc=0;; esac; '
            'case "$r" in *d[1-9]*|*g[2-9]*) rc=2;; esac'
        )
    steps.append('exit "$rc"')
    return wrap("; ".join(steps), timeout_s)


def longest_first(paths: Sequence[str]) -> list[str]:
    """Paths ordered for `split_grep_line`: a path that prefixes another must come after it."""
    return sorted(paths, key=len, reverse=True)


def split_grep_line(
    line: str, ordered_paths: Sequence[str], *, with_offsets: bool = False
) -> tuple[str, int | None, str] | None:
    """'PATH:[OFFSET:]LINE' -> (PATH, OFFSET, LINE) for one of the paths, given `longest_first`."""
    for path in ordered_paths:
        if line.startswith(path) and line[len(path) : len(path) + 1] == ":":
            rest = line[len(path) + 1 :]
            if not with_offsets:
                return path, None, rest
            offset, sep, text = rest.partition(":")
            if not sep or not offset.isdigit():
                return None
            return path, int(offset), text
    return None


def is_plain(path: str) -> bool:
    """Not compressed: byte offsets in grep's output are offsets in the file."""
    return _suffix(path) is None


def _suffix(path: str) -> str | None:
    for suffix in DECOMPRESSORS:
        if path.endswith(suffix):
            return suffix
    return None


def _region_reader(path: str, start: int, length: int) -> str:
    """Bytes [start, start+length) of a plain file; dd exits 0 (no SIGPIPE as with tail|head)."""
    return shlex.join(
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


def _reader(path: str) -> str:
    suffix = _suffix(path)
    tool = DECOMPRESSORS[suffix] if suffix else ("cat",)
    return shlex.join([*tool, "--", path])
