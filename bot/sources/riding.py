"""Pass 2 riding in pass 1's remote command: one round trip for the usual question.

Strategy: pass 1's output goes to the client line by line through `awk`, which also notes the
queue IDs the lines name (the word after "program[pid]: ") and, in plain files, the byte ranges
around each line that `bot.followup.regions` would choose from them (the same arithmetic: a
quarter of a region before the hit, the rest after, merged, kept while they total less than
half the file). Then, in the same command, pass 2 greps those IDs: plain files in those ranges
or whole, compressed files whole. The client uses pass 2's lines only where they are exactly
what its own pass 2 would read (the same files, ranges and a superset of the IDs; see
`Ahead`), so the answer never depends on riding. awk reads only log text; what it hands
the shell is digits, IDs of letters and digits, and file numbers, never text from a line.

Output after pass 1's lines: "=1" once awk has read all of them and exited well (without it,
pass 1's lines may be cut: awk missing, refused or killed, and the client reads pass 1 again
without riding); then "=2", "I<TAB>ID" per ID, pass 2's lines in `grep_commands.grep_script`'s
format and order, each range's lines after "@<TAB>N:START:LENGTH" (N: the file's place in
`paths`) with their offsets in the range, and "=." when pass 2 finished. Pass 2 has its own
time budget (`Ride.seconds` from the command's start), so a slow ride never costs pass 1: a
ride without "=." is dropped and the client runs its own pass 2. With more IDs than
`Ride.max_ids` (a broad query), or a large file left with no range, no "=2".
A compressed file is decompressed again by pass 2: its lines of an ID may come before the line
that named the ID, so one pass would have to keep the whole decompressed file.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from bot.sources import commands, file_readers, grep_commands

PASS1_END = "=1"  # pass 1's lines all came through awk
PASS2_MARK = "=2"
PASS2_END = "=."  # pass 2 finished in its time
IDS_PREFIX = "I\t"
SPAN_PREFIX = "@\t"  # before the lines of one range: "@<TAB>N:START:LENGTH"


@dataclass(frozen=True)
class Ride:
    """How pass 2 rides: at most `max_ids` queue IDs; ranges of `region_bytes` (0: whole files)
    in plain files of `sizes`; files in `large` only in ranges (else pass 2 is not sent)."""

    max_ids: int
    region_bytes: int
    sizes: Mapping[str, int]
    large: frozenset[str] = frozenset()
    days: tuple[str, ...] = ()  # ranges only around lines that start so (`day_prefixes`)
    seconds: int = 0  # pass 2 ends this long after pass 1 started, done or not (0: no pass 2)


# Pass 1's lines pass through; the IDs and ranges go to fd 3 as "RC IDS/N:START:LENGTH ..."
# for the shell, which prints the markers and the IDs for the client. Paths and sizes come from the
# environment (MT_P<n>, MT_S<n>, MT_L<n>: a large file), not from the program text.
# A queue ID as `parsers.postfix.is_queue_id` decides ("NOQUEUE" and "warning" are none).
_AWK = r"""
function qid(t) {
  if (length(t) < 5 || length(t) > 24 || t ~ /[^0-9A-Za-z]/) return 0
  if (t !~ /[a-z]/) return length(t) >= 8 || t ~ /[0-9]/
  return length(t) >= 12 && t ~ /[0-9]/ }
BEGIN { nd = split(ENVIRON["MT_DAYS"], dl, "|"); for (k = 1; k <= nd; k++) day[dl[k]] = 1
  n = split(plain, q, " "); for (k = 1; k <= n; k++) { i = q[k]; c[i] = 0
  p[i] = ENVIRON["MT_P" i] ":"; s[i] = ENVIRON["MT_S" i] + 0; big[i] = ENVIRON["MT_L" i] + 0 }
  ids = 0; over = 0; hit = 0 }
{ print }
substr($0, 1, 1) == "!" { next }
{ hit = 1
  if (!over && match($0, /\]: [0-9A-Za-z][0-9A-Za-z][0-9A-Za-z][0-9A-Za-z][0-9A-Za-z]+: /)) {
    id = substr($0, RSTART + 3, RLENGTH - 5)
    if (qid(id) && !(id in seen)) { seen[id] = 1; ids++; if (ids > max) over = 1 } }
  if (over || before + after <= 0) next
  for (k = 1; k <= n; k++) if (substr($0, 1, length(p[i = q[k]])) == p[i]) {
    t = substr($0, length(p[i]) + 1); off = t + 0; t = substr(t, index(t, ":") + 1)
    if (nd && !(substr(t, 1, 7) in day) && !(substr(t, 1, 10) in day)) break
    b = off - before; if (b < 0) b = 0; e = off + after
    if (c[i] > 0 && b <= E[i, c[i]]) { if (e > E[i, c[i]]) E[i, c[i]] = e }
    else { c[i]++; B[i, c[i]] = b; E[i, c[i]] = e }
    break } }
END { rc = hit ? 0 : 1; list = ""; regs = ""; skip = over || ids == 0
  for (id in seen) list = list " " id
  for (k = 1; k <= n && !skip; k++) { i = q[k]; t = 0
    for (j = 1; j <= c[i]; j++) t += E[i, j] - B[i, j]
    if (c[i] > 0 && t < int(s[i] / 2)) for (j = 1; j <= c[i]; j++) {
      regs = regs sprintf(" %d:%.0f:%.0f", i, B[i, j], E[i, j] - B[i, j]) }
    else if (big[i]) skip = 1 }
  if (skip) { printf "%d /\n", rc > "/dev/fd/3"; exit }
  printf "%d %s/%s\n", rc, list, regs > "/dev/fd/3" }
"""


def both_passes(
    pass1: str,
    paths: Sequence[str],
    ride: Ride,
    tools: commands.Tools = commands.NO_TOOLS,
) -> str:
    """Pass 1's script (`grep_script`, with offsets for ranges), then pass 2 of the IDs
    its lines name, in the same command; the exit status is pass 1's. Pass 2 runs under its
    own `timeout` (a process group of its own, so a cancelled query's pass 2 may outlive it
    by at most `ride.seconds`)."""
    plain = [p for p in paths if file_readers.is_plain(p)]
    number = {p: i for i, p in enumerate(paths)}
    before = ride.region_bytes // 4
    after = ride.region_bytes - before
    env = " ".join(
        f"MT_P{number[p]}={shlex.quote(p)} MT_S{number[p]}={int(ride.sizes.get(p, 0))}"
        + (f" MT_L{number[p]}=1" if p in ride.large else "")
        for p in plain
    )
    if ride.days:
        env += " MT_DAYS=" + shlex.quote("|".join(ride.days))
    awk = (
        f"{env} awk -v plain={shlex.quote(' '.join(str(number[p]) for p in plain))} "
        f"-v max={int(ride.max_ids)} "
        f"-v before={before} -v after={after} {shlex.quote(_AWK)}"
    )
    pass2 = _pass2(paths, number, tools)
    # awk's status and its summary say whether every line of pass 1 came through; pass 2 gets
    # what is left of `ride.seconds` since t0, when the whole command began (set by the listing
    # in front of it, else here; less a second: `date +%s` counts whole seconds)
    return (
        f"t0=${{t0:-$(date +%s)}}; exec 5>&1; sum=$( ( {pass1} ) | {awk} 3>&1 >&5 ); a=$?; "
        'rc1=${sum%% *}; rest=${sum#* }; ids=${rest%%/*}; regs=" ${rest#*/} "; '
        'case "$a:$rc1:$rest" in 0:[01]:*/*) ;; *) exit 1;; esac; '
        f"echo {PASS1_END}; "
        f"left=$(( {int(ride.seconds)} - 1 - $(date +%s) + t0 )); "
        'if [ -n "${ids# }" ] && [ "$left" -gt 0 ]; then '
        f"echo {PASS2_MARK}; printf 'I\\t%s\\n' $ids; export ids regs; "
        f'timeout -k 1 "$left" sh -c {shlex.quote(pass2)}; '
        f"case $? in 0|1) echo {shlex.quote(PASS2_END)};; esac; fi; "
        'exit "$rc1"'
    )


MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MAX_DAYS = 31


def day_prefixes(start: datetime | None, end: datetime | None, zone: tzinfo) -> tuple[str, ...]:
    """How the lines of the window's days start, for the server's ranges: syslog's "May  8 "
    and "May 08 " in the server's zone, RFC 3339's "2024-05-08" a day either side (its offset
    may be another zone's). Empty (every line) for an open or long window. A line the client
    keeps that starts otherwise only costs the ride (its range is then not the server's)."""
    if start is None or end is None:
        return ()
    first = start.astimezone(zone).date()
    last = (end - timedelta(microseconds=1)).astimezone(zone).date()
    if (last - first).days > MAX_DAYS:
        return ()
    found: list[str] = []
    day = first - timedelta(days=1)
    while day <= last + timedelta(days=1):
        found.append(day.isoformat())
        if first <= day <= last:
            month = MONTH_NAMES[day.month - 1]
            found += [f"{month} {day.day:2d} ", f"{month} {day.day:02d} "]
        day += timedelta(days=1)
    return tuple(dict.fromkeys(found))


def _pass2(paths: Sequence[str], number: Mapping[str, int], tools: commands.Tools) -> str:
    """Pass 2 of $ids (letters and digits, space-separated) over `paths`: plain files in the
    ranges of $regs (" N:START:LENGTH ...") or whole, the others whole; the output and order of
    `grep_commands.grep_script` with those ranges."""
    expr = "$args" if tools.rg else '-e "$pat"'
    steps = [
        "rc=1",
        "exec 4>&1",
        "pat=$(printf '%s\\n' $ids)",
        'args=; for i in $ids; do args="$args -e $i"; done',
    ]
    whole = [p for p in paths if file_readers.is_plain(p)]
    if whole:
        keep = "; ".join(
            f'case "$regs" in *" {number[p]}:"*) ;; '
            f"*) {grep_commands.keep_readable(shlex.quote(p))};; esac"
            for p in whole
        )
        steps.append(f"set --; {keep}")
        steps.append(grep_commands.plain_grep(expr, tools))
    for path in paths:
        if not file_readers.is_plain(path) and not file_readers.is_journal(path):
            steps.append(
                grep_commands.stream_step(path, file_readers.stream_reader(path, tools), expr)
            )
    for path in whole:
        dd = (
            f"dd {shlex.quote('if=' + path)} iflag=skip_bytes,count_bytes "
            'skip="$b" count="$l" bs=1M status=none | sed \'$d\''
        )
        steps.append(
            f"for x in $regs; do case $x in {number[path]}:*) "
            "b=${x#*:}; l=${b#*:}; b=${b%%:*}; printf '@\\t%s\\n' \"$x\"; "
            + grep_commands.stream_step(path, dd, "-b " + expr)
            + ";; esac; done"
        )
    steps.append('exit "$rc"')
    return "; ".join(steps)


@dataclass(frozen=True)
class Span:
    """A range pass 2 read on the server, and its lines: (offset in the file, text)."""

    start: int
    lines: tuple[tuple[int, str], ...]
    length: int


class Ahead:
    """Pass 2's output from pass 1's command, kept to answer the client's own pass 2 with the
    lines it would read: the same files, a subset of the IDs, its ranges inside the server's."""

    def __init__(self, paths: Sequence[str], output: Sequence[str]) -> None:
        self.paths = tuple(paths)
        self.ids: set[str] = set()
        self.whole: list[str] = []  # whole files' lines, and every problem line
        self.spans: dict[str, list[Span]] = {}
        ordered = grep_commands.longest_first(self.paths)
        span: tuple[str, int, int, list[tuple[int, str]]] | None = None
        for line in output:
            if line.startswith(IDS_PREFIX):
                self.ids.add(line[len(IDS_PREFIX) :])
            elif line.startswith(SPAN_PREFIX):
                number, start, length = line[len(SPAN_PREFIX) :].split(":")
                span = (self.paths[int(number)], int(start), int(length), [])
                self.spans.setdefault(span[0], []).append(Span(span[1], (), span[2]))
            elif span is None or line.startswith(grep_commands.PROBLEM_PREFIX):
                self.whole.append(line)
            else:
                split = grep_commands.split_grep_line(line, ordered, with_offsets=True)
                if split is not None and split[1] is not None:
                    span[3].append((span[1] + split[1], split[2]))
                    last = self.spans[span[0]][-1]
                    self.spans[span[0]][-1] = Span(last.start, tuple(span[3]), last.length)

    def lines_for(
        self,
        paths: Sequence[str],
        patterns: Sequence[str],
        regions: Mapping[str, Sequence[tuple[int, int]]] | None,
    ) -> list[str] | None:
        """What `grep_commands.grep_command(paths, patterns, regions=regions)` prints, in its order;
        None when these lines cannot tell exactly."""
        wanted = {path: list(spans) for path, spans in (regions or {}).items() if spans}
        if (
            tuple(paths) != self.paths
            or not self.ids.issuperset(patterns)
            or set(wanted) != set(self.spans)
        ):
            return None
        ordered = grep_commands.longest_first(self.paths)
        out = []
        for line in self.whole:
            split = grep_commands.split_grep_line(line, ordered)
            if line.startswith(grep_commands.PROBLEM_PREFIX) or (
                split is not None and any(p in split[2] for p in patterns)
            ):
                out.append(line)
        for path in self.paths:
            for start, length in wanted.get(path, ()):
                found = _region(self.spans[path], start, start + length, patterns)
                if found is None:
                    return None
                out.extend(f"{path}:{text}" for text in found)
        return out


def _region(
    spans: Sequence[Span], start: int, end: int, patterns: Sequence[str]
) -> list[str] | None:
    """The lines `file_readers.region_reader` gives for [start, end) that hold a pattern, from the
    server's range around it: lines inside the range but the last one it reaches (it may be
    cut), and a first line cut at `start`. None: not inside one range, or a line's bytes are
    not known (invalid UTF-8 where the range cuts)."""
    span = next((s for s in spans if s.start <= start and end <= s.start + s.length), None)
    if span is None:
        return None
    found = []
    for offset, text in span.lines:
        if offset >= end:
            break
        raw = text.encode()
        unsure = 2 * text.count("\ufffd")  # a replaced byte may have been 1 to 3 bytes
        least, most = offset + len(raw) + 1 - unsure, offset + len(raw) + 1  # after its newline
        if least >= end or most <= start:
            continue  # the range's last line (dropped, it may be cut), or before the range
        if most >= end or (unsure and offset < start):
            return None
        part = text if offset >= start else raw[start - offset :].decode("utf-8", "replace")
        if any(p in part for p in patterns):
            found.append(part)
    return found
