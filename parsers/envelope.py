"""The syslog envelope: timestamp, host and tag in front of every Postfix message.

Strategy: try each known line format in turn with an anchored regex; the first that matches gives
an `Envelope` whose `text` is the Postfix message part. Yearless formats carry no year, so the
caller passes a `YearGuess` (built from the file's modification time) and the zone of the server.
Nothing here raises on odd input: an unknown shape returns None.

Formats, each with a real sample:
- traditional syslog (RFC 3164), space-padded day:
  ``May 13 10:00:12 mx1 postfix/smtpd[1234]: connect from ...``
- Postfix's own ``maillog_file`` (postlogd), zero-padded day, same shape:
  ``Jan 01 00:00:03 mx1 postfix/qmgr[77]: 4Bc1...: removed``
- RFC 3339 (rsyslog ``RSYSLOG_FileFormat``, syslog-ng ISO), with or without fraction, ``Z``,
  ``+09:00`` or ``+0900``; ``journalctl -o short-iso`` is the same shape:
  ``2024-05-13T10:00:12.123456+02:00 mx1 postfix/smtp[99]: ...``
- ``journalctl -o json``: one JSON object per line with ``__REALTIME_TIMESTAMP`` (microseconds
  since the epoch), ``_HOSTNAME``, ``SYSLOG_IDENTIFIER``, ``_PID`` and ``MESSAGE``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from sys import intern
from typing import NamedTuple

MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
        start=1,
    )
}

# "postfix/submission/smtpd[1234]: " or "postfix-out/smtp[9]: " or "postfix[7]: "
_TAG = r"(?P<program>[^\s\[:]+)(?:\[(?P<pid>\d+)\])?:[ ]?"

# "May 13 10:00:12 mx1 " / "Jan 01 00:00:03 mx1 "
_TRADITIONAL = re.compile(
    r"(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) {1,2}(?P<day>\d{1,2}) "
    r"(?P<time>\d\d:\d\d:\d\d)(?:\.(?P<frac>\d{1,6}))? (?P<host>\S+) " + _TAG
)

# "2024-05-13T10:00:12.123456+02:00 mx1 " / "2024-05-13T10:00:12+0200 mx1 " / "...Z mx1 "
_RFC3339 = re.compile(
    r"(?P<stamp>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d{1,9})?)"
    r"(?P<zone>Z|[+-]\d\d:?\d\d)? (?P<host>\S+) " + _TAG
)


class Envelope(NamedTuple):
    """The envelope of one line (a tuple: one is built per line read)."""

    timestamp: datetime | None
    host: str | None
    program: str | None
    pid: int | None
    text: str

    @property
    def daemon(self) -> str | None:
        """`postfix/submission/smtpd` -> `smtpd`: the daemon is after the last '/'."""
        if self.program is None:
            return None
        return self.program.rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class YearGuess:
    """How to give a year to a yearless timestamp read from one file.

    A file's lines are never later than its modification time, so a month/day that would fall
    after `reference` (the mtime, plus a day of slack for zones) belongs to the year before:
    that is what walks a file backwards over New Year. `fixed` (a configured override) is the
    year the file was last written: the walk back over New Year still applies.
    """

    reference: datetime
    fixed: int | None = None

    def year_for(self, month: int, day: int) -> int:
        ref = self.reference + timedelta(days=1)
        year = ref.year
        if self.fixed is not None:
            year = self.fixed
            if ref.year != self.fixed:  # the mtime says nothing: the year's last line is late
                ref = datetime(self.fixed, 12, 31, tzinfo=ref.tzinfo)
        return year if (month, day) <= (ref.month, ref.day) else year - 1


def parse_envelope(
    line: str, *, zone: tzinfo = UTC, years: YearGuess | None = None
) -> Envelope | None:
    """Read the envelope of one log line, or None when no known format fits."""
    if line.startswith("{"):
        return _parse_journal_json(line)
    match = _TRADITIONAL.match(line)
    if match is not None:
        return _from_traditional(match, line, zone, years)
    match = _RFC3339.match(line)
    if match is not None:
        return _from_rfc3339(match, line, zone)
    return None


def _pid(text: str | None) -> int | None:
    return int(text) if text else None


def _from_traditional(
    match: re.Match[str], line: str, zone: tzinfo, years: YearGuess | None
) -> Envelope:
    host, program, pid = match.group("host", "program", "pid")
    head = line[: match.start("host")]  # "May 13 10:00:12 ": the time stamp, as written
    if years is None:  # without a guess the year follows the clock: nothing to keep
        stamp = _traditional_stamp(match, zone, YearGuess(reference=datetime.now(zone)), {})
    else:
        stamps, days = _stamps_of(zone, years)
        try:
            stamp = stamps[head]
        except KeyError:
            stamp = _traditional_stamp(match, zone, years, days)
            if len(stamps) >= _STAMPS_KEPT:
                stamps.clear()
            stamps[head] = stamp
    return Envelope(
        stamp, intern(host), intern(program), int(pid) if pid else None, line[match.end() :]
    )


# Lines of one second share their time stamp: build each datetime once (a log has many lines
# per second) and share it, which also keeps one datetime per second in memory, not per line.
# The stamps (and the year of each day) are kept for one (zone, year guess) at a time: a file's
# lines come one after another.
_STAMPS_KEPT = 4096
_Stamps = dict[str, datetime | None]
_Years = dict[tuple[int, int], int]
_current: tuple[tzinfo, YearGuess, _Stamps, _Years] | None = None


def _stamps_of(zone: tzinfo, years: YearGuess) -> tuple[_Stamps, _Years]:
    global _current  # a cache: the answer never depends on it
    current = _current
    same_zone = current is not None and (current[0] is zone or current[0] == zone)
    if current is None or not same_zone or not _same_years(current[1], years):
        current = _current = (zone, years, {}, {})
    return current[2], current[3]


def _same_years(kept: YearGuess, years: YearGuess) -> bool:
    """Do both guesses give every day the same year? `year_for` reads the reference's calendar
    fields in its own zone: two references at the same instant in other zones can differ on
    New Year's Eve, so equal instants are not enough."""
    if kept is years:
        return True
    return kept.fixed == years.fixed and (
        kept.reference.replace(tzinfo=None) == years.reference.replace(tzinfo=None)
    )


def _traditional_stamp(
    match: re.Match[str], zone: tzinfo, years: YearGuess, days: _Years
) -> datetime | None:
    month = MONTHS[match["mon"]]
    day = int(match["day"])
    clock = match["time"]  # "10:00:12"
    frac = match["frac"]
    micro = int(frac.ljust(6, "0")) if frac else 0
    year = days.get((month, day))
    if year is None:
        year = days[month, day] = years.year_for(month, day)  # (at most 366 days)
    try:
        return datetime(
            year, month, day, int(clock[:2]), int(clock[3:5]), int(clock[6:]), micro, tzinfo=zone
        )
    except ValueError:  # Feb 29 in a guessed non-leap year, or a mangled field
        return None


def _from_rfc3339(match: re.Match[str], line: str, zone: tzinfo) -> Envelope:
    stamp_text = match["stamp"].replace(" ", "T")
    if "." in stamp_text:  # Python takes at most 6 fraction digits
        head, frac = stamp_text.split(".", 1)
        stamp_text = f"{head}.{frac[:6].ljust(6, '0')}"
    zone_text = match["zone"]
    try:
        stamp = datetime.fromisoformat(stamp_text)
        if zone_text is None:
            stamp = stamp.replace(tzinfo=zone)
        elif zone_text == "Z":
            stamp = stamp.replace(tzinfo=UTC)
        else:
            stamp = datetime.fromisoformat(stamp_text + zone_text[:3] + ":" + zone_text[-2:])
    except ValueError:
        return Envelope(
            None, match["host"], match["program"], _pid(match["pid"]), line[match.end() :]
        )
    return Envelope(stamp, match["host"], match["program"], _pid(match["pid"]), line[match.end() :])


def _parse_journal_json(line: str) -> Envelope | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    message = record.get("MESSAGE")
    if isinstance(message, list):  # journald stores non-UTF-8 messages as a byte array
        message = bytes(b for b in message if isinstance(b, int) and 0 <= b < 256).decode(
            "utf-8", errors="replace"
        )
    if not isinstance(message, str):
        return None
    stamp: datetime | None = None
    micros = record.get("__REALTIME_TIMESTAMP")
    if isinstance(micros, str) and micros.isdigit():
        stamp = datetime.fromtimestamp(int(micros) / 1_000_000, tz=UTC)
    program = record.get("SYSLOG_IDENTIFIER")
    pid = record.get("SYSLOG_PID") or record.get("_PID")
    host = record.get("_HOSTNAME")
    return Envelope(
        stamp,
        host if isinstance(host, str) else None,
        program if isinstance(program, str) else None,
        int(pid) if isinstance(pid, str) and pid.isdigit() else None,
        message,
    )
