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
- grep:  "PATH:LINE" per matching line (grep -H, --label for decompressed files); with pass 2
         in the same command, "=2", "I<TAB>QUEUEID" per ID, then pass 2's "PATH:LINE"s
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta

from bot.errors import ConfigError

# Decompressor per suffix; each reads the file named after "--" and writes it to stdout.
DECOMPRESSORS: dict[str, tuple[str, ...]] = {
    ".gz": ("gzip", "-dc"),
    ".bz2": ("bzip2", "-dc"),
    ".xz": ("xz", "-dc"),
    ".zst": ("zstd", "-dcq"),
}
# With pigz on the server, .gz is read by it (parallel, about twice gzip's speed).
FAST_DECOMPRESSORS: dict[str, tuple[str, ...]] = {".gz": ("pigz", "-dc")}
_GLOB_CHARS = re.compile(r"[*?\[\]]")
_SAFE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.*?\[\]{}-]+$")
MAX_PATTERNS = 2000


@dataclass(frozen=True)
class Tools:
    """The faster tools a server has (`PROBE`): ripgrep for plain files, pigz for .gz, zstd for
    .zst. Without them: `LC_ALL=C grep -F` and the standard decompressors, same output. And
    awk, which pass 2 needs to ride in pass 1's command (`riding`): assumed until a probe
    finds none."""

    rg: bool = False
    pigz: bool = False
    zstd: bool = False
    awk: bool = True


NO_TOOLS = Tools()
TOOLS_PREFIX = "T\t"
# A fixed script, no user text: "T" and a tab-separated name per tool found on the PATH.
PROBE = (
    "printf T; for t in rg pigz zstd awk; do "
    'command -v "$t" >/dev/null 2>&1 && printf \'\\t%s\' "$t"; done; echo'
)


def parse_tools(line: str) -> Tools:
    """PROBE's line ("T<TAB>rg<TAB>pigz...") as Tools."""
    found = set(line.split("\t")[1:])
    return Tools(rg="rg" in found, pigz="pigz" in found, zstd="zstd" in found, awk="awk" in found)


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
) -> str:
    """The listing, a line "=", then `grep_script`'s output (`grep_script` or
    `bot.sources.riding.both_passes`): one round trip where the files to search are known from
    the last listing (and checked against this one)."""
    listing = _list_script(globs, probe, known_heads)
    return wrap(f"{listing}; echo {LISTING_END}; {grep_script}", timeout_s)


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
    streams = [(p, stream_reader(p, tools)) for p in paths if _suffix(p) is not None]
    streams += [(p, _journal_reader(p, journal_directory)) for p in paths if is_journal(p)]
    for path in paths:
        for start, length in regions.get(path, ()):
            streams.append((path, _region_reader(path, start, length)))
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


def is_plain(path: str) -> bool:
    """A plain file: byte offsets in grep's output are offsets in the file."""
    return _suffix(path) is None and not is_journal(path)


def _suffix(path: str) -> str | None:
    for suffix in DECOMPRESSORS:
        if path.endswith(suffix):
            return suffix
    return None


def _region_reader(path: str, start: int, length: int) -> str:
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


def journal_ends_command(directory: str | None, timeout_s: float = 30) -> str:
    """The journal's first and last entries (short-iso), to learn which days it covers."""
    base = _journalctl(directory)
    return wrap(f"{base} | head -n 1; {base} -n 1", timeout_s)


def _journalctl(directory: str | None, since: str | None = None, until: str | None = None) -> str:
    argv = ["journalctl", "-q", "--no-pager", "-o", "short-iso"]
    if directory:
        argv += ["-D", directory]
    if since:
        argv += ["--since", since]
    if until:
        argv += ["--until", until]
    return shlex.join(argv)


def _journal_reader(path: str, directory: str | None) -> str:
    """One UTC day of the journal, as syslog-like lines with RFC 3339 times."""
    day = date.fromisoformat(path.removeprefix(JOURNAL_PREFIX))
    nxt = day + timedelta(days=1)
    return _journalctl(
        directory, f"{day.isoformat()} 00:00:00 UTC", f"{nxt.isoformat()} 00:00:00 UTC"
    )


def stream_reader(path: str, tools: Tools = NO_TOOLS) -> str:
    suffix = _suffix(path)
    tool = DECOMPRESSORS[suffix] if suffix else ("cat",)
    if suffix == ".gz" and tools.pigz:
        tool = FAST_DECOMPRESSORS[suffix]
    return shlex.join([*tool, "--", path])
