"""The grep commands: fixed strings searched in log files, and their output read back.

Output: "PATH:LINE" per matching line (grep -H, --label for decompressed files), with
`with_offsets` "PATH:OFFSET:LINE"; a file that could not be read is a PROBLEM line ("!..."). With
pass 2 in the same command (`bot.sources.riding`), "=2", "I<TAB>QUEUEID" per ID, then pass 2's
"PATH:LINE"s.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import replace

from bot.sources.commands import NO_TOOLS, Tools, wrap
from bot.sources.file_readers import (
    is_compressed,
    is_journal,
    is_plain,
    journal_reader,
    region_reader,
    stream_reader,
)

MAX_PATTERNS = 2000


def grep_command(
    paths: Sequence[str],
    patterns: Sequence[str],
    timeout_s: float = 120,
    *,
    ignore_case: bool = False,
    with_offsets: bool = False,
    regions: Mapping[str, Sequence[tuple[int, int]]] | None = None,
    journal_directory: str | None = None,
    tools: Tools = NO_TOOLS,
) -> str:
    """Fixed-string grep of `patterns` over `paths`, every matching line as 'PATH:LINE'.

    `with_offsets` adds grep's byte offset ('PATH:OFFSET:LINE'; in the file for plain files).
    `regions` limits plain files to byte ranges (start, length), read with `dd`, so that pass 2
    reads a few megabytes around pass 1's hits instead of the whole file. `tools`: the
    server's faster tools, used where they give the same lines (`Tools`).
    Exit status follows grep: 0 some match, 1 none, 2 an error (in any file).
    """
    script = grep_script(
        paths,
        patterns,
        ignore_case=ignore_case,
        with_offsets=with_offsets,
        regions=regions,
        journal_directory=journal_directory,
        tools=tools,
    )
    return wrap(script, timeout_s)


def grep_script(
    paths: Sequence[str],
    patterns: Sequence[str],
    *,
    ignore_case: bool = False,
    with_offsets: bool = False,
    regions: Mapping[str, Sequence[tuple[int, int]]] | None = None,
    journal_directory: str | None = None,
    tools: Tools = NO_TOOLS,
) -> str:
    if not patterns:
        raise ValueError("grep needs at least one pattern")
    if len(patterns) > MAX_PATTERNS:
        raise ValueError("too many patterns for one grep")
    for pattern in patterns:
        if not pattern or "\n" in pattern or "\r" in pattern or "\0" in pattern:
            raise ValueError("patterns are single, non-empty lines")
    flags = ("-i " if ignore_case else "") + ("-b " if with_offsets else "")
    expr = flags + " ".join(f"-e {shlex.quote(p)}" for p in patterns)
    if ignore_case and not all(p.isascii() for p in patterns):
        # ripgrep folds case by Unicode, LC_ALL=C grep by ASCII only: grep decides
        tools = replace(tools, rg=False)
    return _grep_steps(paths, expr, regions or {}, journal_directory, tools)


def _grep_steps(
    paths: Sequence[str],
    expr: str,
    regions: Mapping[str, Sequence[tuple[int, int]]],
    journal_directory: str | None,
    tools: Tools = NO_TOOLS,
) -> str:
    """The grep script for `expr`, grep's options and patterns as shell words (the same for
    ripgrep). Plain files are searched by ripgrep when the server has it (`RG`: the same
    'PATH:[OFFSET:]LINE' output, files in the given order, the same exit statuses)."""
    plain = [p for p in paths if is_plain(p) and p not in regions]
    streams = [(p, stream_reader(p, tools)) for p in paths if is_compressed(p)]
    streams += [(p, journal_reader(p, journal_directory)) for p in paths if is_journal(p)]
    for path in paths:
        for start, length in regions.get(path, ()):
            streams.append((path, region_reader(path, start, length)))
    # rc: 1 until something matches, then 0. A file that cannot be read (rotated away since the
    # listing, permissions, corrupt, no decompressor) is reported on stdout as a PROBLEM line
    # ("!unreadable<TAB>PATH" or "!failed<TAB>PATH<TAB>STATUSES") and the others are still
    # searched: one bad file must not cost the whole answer. A decompressor is piped into grep
    # and POSIX sh has no pipefail, so both exit statuses are written to fd 3 ("d<N>", "g<N>")
    # and read back through a command substitution while grep's output goes to fd 4 (stdout).
    steps = ["rc=1", "exec 4>&1"]
    if plain:
        steps.extend(plain_steps(shlex.join(plain), expr, tools))
    for path, reader in streams:
        steps.append(stream_step(path, reader, expr))
    steps.append('exit "$rc"')
    return "; ".join(steps)


def plain_steps(words: str, expr: str, tools: Tools = NO_TOOLS) -> list[str]:
    """Grep `expr` in the readable ones of the plain files `words` (shell words), at once."""
    return [
        f"set --; for f in {words}; do " + keep_readable('"$f"') + "; done",
        plain_grep(expr, tools),
    ]


def keep_readable(word: str) -> str:
    """Add the file `word` to "$@" if it can be read, else say so (a PROBLEM line)."""
    return (
        f"if [ -r {word} ]; then set -- \"$@\" {word}; else printf '!unreadable\\t%s\\n' {word}; fi"
    )


def plain_grep(expr: str, tools: Tools = NO_TOOLS) -> str:
    """Grep `expr` in the plain files "$@" (if any), at once; rc=0 on a match."""
    return (
        f'if [ "$#" -gt 0 ]; then {RG if tools.rg else "grep -F -a -H"} {expr} -- "$@"; s=$?; '
        '[ "$s" -eq 0 ] && rc=0; '
        '[ "$s" -gt 1 ] && printf \'!failed\\t*\\tg%s\\n\' "$s"; fi'
    )


def stream_step(path: str, reader: str, expr: str) -> str:
    """Grep `expr` in what `reader` prints, labelled `path`; its statuses as `grep_script`'s."""
    quoted = shlex.quote(path)
    readable = "true" if is_journal(path) else f"[ -r {quoted} ]"
    return (
        f"if {readable}; then "
        f"r=$( {{ {{ {reader}; echo d$? >&3; }} | "
        f"grep -F -a -H --label={quoted} {expr} >&4; echo g$? >&3; }} 3>&1 ); "
        'case "$r" in *g0*) rc=0;; esac; '
        'case "$r" in *d[1-9]*|*g[2-9]*) '
        f"printf '!failed\\t%s\\t%s\\n' {quoted} \"$(echo $r)\";; esac; "
        f"else printf '!unreadable\\t%s\\n' {quoted}; fi"
    )


# ripgrep as `grep -F -a -H`: no config file, no colours, headings or line numbers; one thread
# so that files come out in the order given (as grep's do); read, not mapped (a mapped 1 GB log
# counts as 1 GB of the command's resident memory).
RG = "rg --no-config -F -a -H -N --no-heading --color never -j 1 --no-mmap"

PROBLEM_PREFIX = "!"


def describe_problem(line: str) -> str:
    """A PROBLEM line of grep_command's output -> 'PATH: what went wrong'."""
    parts = line[1:].split("\t")
    kind, path = parts[0], parts[1] if len(parts) > 1 else "?"
    statuses = " ".join(parts[2:])
    if kind == "unreadable":
        return f"{path}: cannot be read (permission denied, or rotated away since it was listed)"
    if path == "*":
        return "grep reported a read error in the plain log files"
    if is_journal(path):
        return f"{path}: journalctl failed (is the user in the adm or systemd-journal group?)"
    if "d127" in statuses:
        return f"{path}: its decompressor is not installed there"
    if any(f"d{n}" in statuses for n in range(1, 10)):
        return f"{path}: could not be decompressed (corrupt, or still being written)"
    return f"{path}: grep failed on it"


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
