"""The listing commands: which log files the configured globs match, their size, modification
time, readability and first line, and the days the journal covers.

Output formats (parsed by `bot.sources.log_files`):
- list:  "SIZE<TAB>MTIME<TAB>READABLE<TAB>PATH" per file (find -printf, then test -r), each
         readable one followed by "H<TAB>PATH<TAB>FIRST LINE"; with a probe, first `PROBE`'s line
- heads: "PATH<TAB>FIRST LINE" per file
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from bot.errors import ConfigError
from bot.sources.commands import NO_TOOLS, PROBE, Tools, wrap
from bot.sources.file_readers import DECOMPRESSORS, journalctl, stream_reader

_GLOB_CHARS = re.compile(r"[*?\[\]]")
_SAFE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.*?\[\]{}-]+$")


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


def list_command(
    globs: Sequence[str],
    timeout_s: float = 30,
    *,
    probe: bool = False,
    known_heads: Collection[str] = (),
) -> str:
    """List the files the globs match: size, modification time, readability, path; and the
    first line of each readable file ("H<TAB>PATH<TAB>LINE"; compressed files decompressed),
    which dates it without a round trip of its own. `known_heads`: compressed files whose first
    line is known, as `head_key`s, not decompressed again. With `probe`, first the server's
    faster tools (`PROBE`'s "T" line), in the same round trip."""
    return wrap(_list_script(globs, probe, known_heads), timeout_s)


def head_key(size: str, mtime: str, path: str) -> str:
    """A listed file's identity as the listing prints its size and mtime: a rotated file whose
    size and mtime did not change has the same first line."""
    return f"{size}/{mtime}/{path}"


def _list_script(
    globs: Sequence[str], probe: bool = False, known_heads: Collection[str] = ()
) -> str:
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
    # the first line of each file: a compressed one through its decompressor (`head` ends it),
    # unless known (its key first; the key ends in the path, so a suffix pattern matches it)
    known = "|".join(shlex.quote(k) for k in sorted(known_heads))
    heads = "".join(
        f"*{suffix}) printf 'H\\t%s\\t%s\\n' \"$path\" "
        f'"$({shlex.join(tool)} -- "$path" 2>/dev/null | head -n 1)";; '
        for suffix, tool in DECOMPRESSORS.items()
    )
    return (
        (PROBE + "; " if probe else "") + "{ " + "; ".join(finds) + "; } 2>/dev/null | "
        "while IFS='\t' read -r size mtime path; do "
        'if [ -r "$path" ]; then r=1; else r=0; fi; '
        'printf \'%s\\t%s\\t%s\\t%s\\n\' "$size" "$mtime" "$r" "$path"; '
        'if [ "$r" = 1 ]; then case "$size/$mtime/$path" in '
        + (f"{known}) ;; " if known else "")
        + heads
        + '*) printf \'H\\t%s\\t%s\\n\' "$path" "$(head -n 1 -- "$path" 2>/dev/null)";; '
        "esac; fi; done"
    )


LISTING_END = "="  # between the listing and the grep output of `list_and_grep_command`
HEAD_PREFIX = "H\t"


def list_and_grep_command(
    globs: Sequence[str],
    grep_script: str,
    timeout_s: float = 120,
    *,
    probe: bool = False,
    known_heads: Collection[str] = (),
    clocked: bool = False,
) -> str:
    """The listing, a line "=", then `grep_script`'s output (`grep_script` or
    `bot.sources.riding.both_passes`): one round trip where the files to search are known from
    the last listing (and checked against this one). `clocked`: note when the command began
    (`t0`), for a riding pass 2's share of the time."""
    listing = _list_script(globs, probe, known_heads)
    start = "t0=$(date +%s); " if clocked else ""
    return wrap(f"{start}{listing}; echo {LISTING_END}; {grep_script}", timeout_s)


def heads_command(paths: Sequence[str], timeout_s: float = 30, tools: Tools = NO_TOOLS) -> str:
    """Print the first line of each file (decompressed), to learn where each file starts."""
    parts = []
    for path in paths:
        reader = stream_reader(path, tools)
        parts.append(
            "printf '%s\\t%s\\n' "
            + shlex.quote(path)
            + ' "$('
            + reader
            + ' 2>/dev/null | head -n 1)"'
        )
    return wrap("; ".join(parts) if parts else "true", timeout_s)


def journal_ends_command(directory: str | None, timeout_s: float = 30) -> str:
    """The journal's first and last entries (short-iso), to learn which days it covers."""
    base = journalctl(directory)
    return wrap(f"{base} | head -n 1; {base} -n 1", timeout_s)
