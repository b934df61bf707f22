"""A server's live queue, read from `postqueue` and `postconf` output, and what it means now.

Strategy: three readers turn command output into values, and one function joins them with what
the logs said into the live state of one queued message (`LiveQueue`):
- `postqueue -j` (Postfix >= 3.1) prints one JSON object per queued message, e.g.
  {"queue_name": "deferred", "queue_id": "6A5DF20CC32", "arrival_time": 1796086517,
   "message_size": 432, "forced_expire": false, "sender": "s@example.net",
   "recipients": [{"address": "x@closed.test", "delay_reason": "connect to ...: Connection
   refused"}]}
- `postqueue -p` (every version) prints the same as text; the queue ID carries `*` (active) or
  `!` (hold), the arrival time has no year, a "(reason)" line precedes the recipients it is for:
      6A5DF20CC32     432 Tue Dec  1 00:55:17  s@example.net
                         (connect to 127.0.0.1[127.0.0.1]:60681: Connection refused)
                                               x@closed.test
- `postconf NAME...` prints "name = value" lines; values use Postfix's time syntax (a number and
  a unit letter s/m/h/d/w; a bare number has the parameter's default unit, postconf(5)).

The next retry follows qmgr: after a failed attempt a message waits its time in the queue,
bounded by minimal_backoff_time and maximal_backoff_time, and the deferred queue is scanned
every queue_run_delay, so the try comes at most that much later. Postfix gives up at the first
attempt after arrival + maximal_queue_lifetime (bounce_queue_lifetime for a bounce notice).

Pure: no I/O, no clock (the caller says when it checked). Readers skip what is not theirs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta, tzinfo

from pydantic import BaseModel, ConfigDict

QUEUE_ID = re.compile(r"^[0-9A-Za-z]{5,32}$")  # short (hex) and long queue IDs
QUEUE_SETTINGS = (
    "maximal_queue_lifetime",
    "bounce_queue_lifetime",
    "minimal_backoff_time",
    "maximal_backoff_time",
    "queue_run_delay",
)
# Postfix's default values and default units (postconf(5)).
_DEFAULTS = {
    "maximal_queue_lifetime": ("5d", "d"),
    "bounce_queue_lifetime": ("5d", "d"),
    "minimal_backoff_time": ("300s", "s"),
    "maximal_backoff_time": ("4000s", "s"),
    "queue_run_delay": ("300s", "s"),
}
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_TIME = re.compile(r"^([0-9]+)([smhdw]?)$")
_REFERENCE = re.compile(r"^\$\{?([a-z_]+)\}?$")
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = {m: i + 1 for i, m in enumerate(_MONTH_NAMES)}
_DAYS = {d: i for i, d in enumerate(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"))}
# "6A5DF20CC32*    432 Tue Dec  1 00:55:17  s@example.net"
_TEXT_HEAD = re.compile(
    r"^(?P<id>[0-9A-Za-z]+)(?P<mark>[*!]?)\s+(?P<size>[0-9]+)\s+"
    r"(?P<dow>[A-Z][a-z]{2}) (?P<mon>[A-Z][a-z]{2})\s+(?P<day>[0-9]{1,2}) "
    r"(?P<hms>[0-9]{2}:[0-9]{2}:[0-9]{2})\s+(?P<sender>\S*)\s*$"
)
_TEXT_REASON = re.compile(r"^\s+\((?P<reason>.*)\)\s*$")  # "   (connect to ...: refused)"
_TEXT_RECIPIENT = re.compile(r"^\s+(?P<address>\S+)\s*$")  # "        x@closed.test"
_MARKS = {"*": "active", "!": "hold", "": "deferred"}


class QueueRecipient(BaseModel):
    model_config = ConfigDict(frozen=True)

    address: str
    delay_reason: str | None = None  # the queue's own words for why it waits


class QueueEntry(BaseModel):
    """One message in a server's queue, as postqueue lists it."""

    model_config = ConfigDict(frozen=True)

    queue_id: str
    queue_name: str  # active, deferred, hold, incoming, maildrop
    arrival_time: datetime
    sender: str  # "" for a bounce notice (the null sender)
    recipients: tuple[QueueRecipient, ...] = ()
    forced_expire: bool = False  # postsuper -e: returned at the next attempt


class QueueTimes(BaseModel):
    """The server's queue settings that say when a mail is retried and given up."""

    model_config = ConfigDict(frozen=True)

    maximal_queue_lifetime: timedelta
    bounce_queue_lifetime: timedelta
    minimal_backoff_time: timedelta
    maximal_backoff_time: timedelta
    queue_run_delay: timedelta


class LiveQueue(BaseModel):
    """One message's state in its server's queue when it was checked (the JSON `queue`)."""

    model_config = ConfigDict(frozen=True)

    host: str
    queue_id: str
    queue_name: str | None  # None: no longer in the queue
    arrival_time: datetime | None = None
    recipients: tuple[QueueRecipient, ...] = ()
    gives_up_at: datetime | None = None
    next_retry_estimate: datetime | None = None
    checked_at: datetime
    lifetime: timedelta | None = None  # the lifetime gives_up_at counts with
    lifetime_from_server: bool = False  # read with postconf (else the configured value)
    forced_expire: bool = False


def parse_postqueue_json(lines: Iterable[str]) -> list[QueueEntry]:
    """`postqueue -j` output -> entries; lines that are not one of its objects are skipped."""
    out: list[QueueEntry] = []
    for line in lines:
        if not line.startswith("{"):
            continue
        try:
            raw = json.loads(line)
            entry = QueueEntry(
                queue_id=str(raw["queue_id"]),
                queue_name=str(raw["queue_name"]),
                arrival_time=datetime.fromtimestamp(int(raw["arrival_time"]), UTC),
                sender=str(raw.get("sender") or ""),
                recipients=tuple(
                    QueueRecipient(
                        address=str(r["address"]),
                        delay_reason=str(r["delay_reason"]) if r.get("delay_reason") else None,
                    )
                    for r in raw.get("recipients") or ()
                ),
                forced_expire=bool(raw.get("forced_expire", False)),
            )
        except (ValueError, KeyError, TypeError, OverflowError):
            continue
        out.append(entry)
    return out


def parse_postqueue_text(lines: Iterable[str], zone: tzinfo, now: datetime) -> list[QueueEntry]:
    """`postqueue -p` output -> entries. Arrival times are in the server's `zone`; their year
    is the latest one (not after `now`) whose calendar has that weekday on that date."""
    out: list[QueueEntry] = []
    head: re.Match[str] | None = None
    recipients: list[QueueRecipient] = []
    reason: str | None = None

    def close() -> None:
        if head is None:
            return
        arrival = _arrival(head, zone, now)
        if arrival is None:
            return
        sender = head["sender"]
        out.append(
            QueueEntry(
                queue_id=head["id"],
                queue_name=_MARKS[head["mark"]],
                arrival_time=arrival,
                sender="" if sender == "MAILER-DAEMON" else sender,
                recipients=tuple(recipients),
            )
        )

    for line in lines:
        match = _TEXT_HEAD.match(line)
        if match:
            close()
            head, recipients, reason = match, [], None
            continue
        if head is None:
            continue
        if not line.strip():
            close()
            head = None
        elif m := _TEXT_REASON.match(line):
            reason = m["reason"]
        elif m := _TEXT_RECIPIENT.match(line):
            recipients.append(QueueRecipient(address=m["address"], delay_reason=reason))
    close()
    return out


def _arrival(head: re.Match[str], zone: tzinfo, now: datetime) -> datetime | None:
    month, day = _MONTHS.get(head["mon"]), int(head["day"])
    weekday = _DAYS.get(head["dow"])
    if month is None or weekday is None:
        return None
    hour, minute, second = (int(x) for x in head["hms"].split(":"))
    latest = now.astimezone(zone).year
    for year in range(latest, latest - 8, -1):
        try:
            day_of = date(year, month, day)
        except ValueError:  # Feb 29 in a common year
            continue
        moment = datetime(year, month, day, hour, minute, second, tzinfo=zone)
        if day_of.weekday() == weekday and moment <= now + timedelta(days=1):
            return moment
    return None


def parse_postconf(lines: Iterable[str]) -> QueueTimes | None:
    """`postconf NAME...` output ("name = value") -> the queue settings; None when a value is
    missing or not a Postfix time. A value naming another ($maximal_queue_lifetime) is followed."""
    raw: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(" = ")
        if sep and name.strip() in _DEFAULTS:
            raw[name.strip()] = value.strip()
    values: dict[str, timedelta] = {}
    for name in QUEUE_SETTINGS:
        text = raw.get(name)
        ref = _REFERENCE.match(text or "")
        if ref is not None:
            text = raw.get(ref[1])
        if text is None:
            return None
        parsed = postfix_duration(text, _DEFAULTS[name][1])
        if parsed is None:
            return None
        values[name] = parsed
    return QueueTimes(**values)


def postfix_duration(text: str, default_unit: str = "d") -> timedelta | None:
    """A Postfix time value ("5d", "300s", a bare "5" in `default_unit`) -> a duration."""
    match = _TIME.match(text.strip())
    if match is None:
        return None
    return timedelta(seconds=int(match[1]) * _UNITS[match[2] or default_unit])


def default_queue_times(lifetime: timedelta | None = None) -> QueueTimes:
    """Postfix's defaults, with `lifetime` (a configured queue_lifetime) for both lifetimes."""
    values = {n: postfix_duration(*_DEFAULTS[n]) or timedelta() for n in QUEUE_SETTINGS}
    if lifetime is not None:
        values["maximal_queue_lifetime"] = values["bounce_queue_lifetime"] = lifetime
    return QueueTimes(**values)


def next_retry(
    arrival: datetime, last_attempt: datetime | None, times: QueueTimes, checked_at: datetime
) -> datetime:
    """When qmgr will try a deferred message again: its last attempt plus its time in the queue
    then (bounded by the backoff times); when that has passed, the next deferred-queue scan,
    at the latest `queue_run_delay` after the check."""
    if last_attempt is not None:
        waited = max(last_attempt - arrival, timedelta())
        backoff = min(max(waited, times.minimal_backoff_time), times.maximal_backoff_time)
        eligible = last_attempt + backoff
        if eligible > checked_at:
            return eligible
    return checked_at + times.queue_run_delay


def live_state(
    host: str,
    queue_id: str,
    entry: QueueEntry | None,
    *,
    times: QueueTimes | None,
    fallback_lifetime: timedelta,
    last_attempt: datetime | None,
    checked_at: datetime,
) -> LiveQueue:
    """One message's live state from its queue entry (None: not in the queue any more), the
    server's settings (None: postconf could not be read) and its last attempt in the logs."""
    if entry is None:
        return LiveQueue(host=host, queue_id=queue_id, queue_name=None, checked_at=checked_at)
    effective = times or default_queue_times(fallback_lifetime)
    bounce = entry.sender == ""
    lifetime = effective.bounce_queue_lifetime if bounce else effective.maximal_queue_lifetime
    held = entry.queue_name == "hold"
    return LiveQueue(
        host=host,
        queue_id=queue_id,
        queue_name=entry.queue_name,
        arrival_time=entry.arrival_time,
        recipients=entry.recipients,
        gives_up_at=None if held else entry.arrival_time + lifetime,
        next_retry_estimate=next_retry(entry.arrival_time, last_attempt, effective, checked_at)
        if entry.queue_name == "deferred"
        else None,
        checked_at=checked_at,
        lifetime=lifetime,
        lifetime_from_server=times is not None,
        forced_expire=entry.forced_expire,
    )


def entries_by_id(entries: Iterable[QueueEntry]) -> Mapping[str, QueueEntry]:
    return {e.queue_id: e for e in entries}
