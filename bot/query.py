"""What a person types after `/mailtrace` (or `mailtrace trace`) -> a validated Query.

Grammar (tokens separated by spaces; order after the target is free):

    TARGET [DATE | DATE..DATE] [TIME] [on SERVER[,SERVER...]]

    TARGET  an address (a@b.example, root@localhost, Slack's <mailto:a@b|a@b> too), @domain,
            a queue ID, a <message-id>, or a client IP (v4 or v6); <a@b> is searched both
            as an address and as a message-id
    DATE    2024-05-13, today, yesterday; a range DATE..DATE (or with an en/em dash)
    TIME    10:00, 4:58pm (narrows the search to an hour either side)
    SERVER  a configured server name; `on mx-a,mx-b` or `on mx-a, mx-b`

What a phone's autocorrect adds is forgiven where the meaning is clear: smart quotes around a
token, a trailing dot or comma (`today.`), a dash for `..`, `4:58 pm`. Anything else is a
UsageError of one line, with at most one example. Nothing here touches a shell: the values
that leave this module are checked against strict patterns, and the fetch layer quotes them
anyway.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from bot.errors import UsageError
from parsers.postfix import is_queue_id

EXAMPLES = (
    "/mailtrace sender2@example.net 2024-05-13",
    "/mailtrace @example.org yesterday 14:30",
    "/mailtrace 4BcD1x2y3z4Q5r6 today",
    "/mailtrace <20240513.abc@mail.example.net>",
    "/mailtrace 203.0.113.7 2024-05-13 on mx1",
)
USAGE = (
    "Usage: /mailtrace TARGET [DATE] [TIME] [on SERVER]\n"
    "TARGET is an address, @domain, queue ID, <message-id> or client IP; DATE is YYYY-MM-DD, "
    "today or yesterday; TIME is HH:MM.\nExamples:\n" + "\n".join(f"  {e}" for e in EXAMPLES)
)
EXAMPLE = "Example: /mailtrace sender2@example.net 2024-05-13"
MAX_QUERY_LENGTH = 512
TIME_SLACK = timedelta(hours=1)

_LOCAL = r"[A-Za-z0-9!#%&'*+/=?^_{|}~.-]{1,64}"
_DOMAIN = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9-]{2,63}\.?"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"  # root@localhost, a@mailhost
_ADDRESS = re.compile(rf"^{_LOCAL}@(?:{_DOMAIN}|{_LABEL})$")
_DOMAIN_ONLY = re.compile(rf"^@(?:{_DOMAIN}|{_LABEL})$")
_MESSAGE_ID = re.compile(r"^<[\x21-\x3b\x3d\x3f-\x7e]{1,250}>$")  # printable, no < > or space
_MAILTO = re.compile(r"^<mailto:([^|>]+)(?:\|[^>]*)?>$")
_SLACK_LINK = re.compile(r"^<(?:https?://)?([^|>]+)\|([^>]+)>$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^(\d{1,2}):([0-5]\d)(?:([ap])\.?m\.?)?$", re.IGNORECASE)
_QUOTES = "“”„‘’‚\"'`«»"
_DASH_RANGE = re.compile(
    r"(\d{4}-\d{2}-\d{2}|today|yesterday)\s*[–—]\s*(\d{4}-\d{2}-\d{2}|today)", re.I
)
_SPACED_MERIDIEM = re.compile(r"(\d)\s+([ap]\.?m\.?)(?=\s|$)", re.IGNORECASE)
_SERVER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class TargetKind(StrEnum):
    ADDRESS = "address"
    DOMAIN = "domain"
    QUEUE_ID = "queue_id"
    MESSAGE_ID = "message_id"
    CLIENT_IP = "client_ip"


class Query(BaseModel):
    """A validated question: what to look for, when (in the asker's zone), and where."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    kind: TargetKind
    target: str  # normalised: address lower-cased, message-id without <>, ...
    # <a@b>: an address typed with its angle brackets may be a message-id too; both are searched
    also_message_id: bool = False
    start: datetime | None = None  # window in the asker's zone; None = the default window
    end: datetime | None = None
    servers: tuple[str, ...] = ()
    text: str = ""  # what was typed, for the audit log and the answer
    # the asker's time zone: dates in answers are days there (the window carries it in JSON)
    zone: tzinfo = Field(default=UTC, exclude=True)

    @property
    def needle(self) -> str:
        """The fixed string to grep for in pass 1."""
        if self.kind is TargetKind.MESSAGE_ID:
            return f"<{self.target}>"
        if self.kind is TargetKind.CLIENT_IP:
            return f"[{self.target}]"
        return self.target

    @property
    def ignore_case(self) -> bool:
        return self.kind in (TargetKind.ADDRESS, TargetKind.DOMAIN)

    @property
    def needle_as_typed(self) -> str:
        """The target written the way the grammar takes it (for suggested queries)."""
        bracketed = self.kind is TargetKind.MESSAGE_ID or self.also_message_id
        return f"<{self.target}>" if bracketed else self.target

    def describe_target(self) -> str:
        """'sender2@example.net', 'queue ID 4104E3D', 'client 203.0.113.7', ..."""
        if self.also_message_id:
            return f"<{self.target}> (as address or message-id)"
        return {
            TargetKind.ADDRESS: self.target,
            TargetKind.DOMAIN: self.target,
            TargetKind.QUEUE_ID: f"queue ID {self.target}",
            TargetKind.MESSAGE_ID: f"message-id <{self.target}>",
            TargetKind.CLIENT_IP: f"client {self.target}",
        }[self.kind]

    def describe(self) -> str:
        """'sender2@example.net on 2024-05-13' for headlines."""
        what = self.describe_target()
        if self.start is None or self.end is None:
            return what
        if self.end - self.start == timedelta(days=1) and self.start.time() == time(0):
            return f"{what} on {self.start:%Y-%m-%d}"
        return f"{what} between {self.start:%Y-%m-%d %H:%M} and {self.end:%Y-%m-%d %H:%M}"


def parse_query(text: str, *, now: datetime, zone: tzinfo) -> Query:
    """Parse typed text into a Query; `now` and `zone` are the asker's (Slack gives the zone)."""
    text = text.strip()
    if not text:
        raise UsageError(f"Tell me what to look for. {EXAMPLE}")
    if len(text) > MAX_QUERY_LENGTH:
        raise UsageError(f"That query is longer than {MAX_QUERY_LENGTH} characters.")
    if any(ch in text for ch in "\n\r\t\0"):
        raise UsageError("Put the whole query on one line.")
    tokens = _tokens(text)
    if not tokens:
        raise UsageError(f"Tell me what to look for. {EXAMPLE}")
    kind, target, bracketed = _parse_target(tokens[0])
    day_from: date | None = None
    day_to: date | None = None
    at: time | None = None
    servers: list[str] = []
    rest = tokens[1:]
    i = 0
    local_now = now.astimezone(zone)
    while i < len(rest):
        token = rest[i]
        low = token.lower()
        if low in ("on", "server", "servers") and i + 1 < len(rest):
            names = rest[i + 1]
            i += 2
            while (names.endswith(",") or rest[i : i + 1] == [","]) and i < len(rest):
                names += rest[i]  # `on mx-a, mx-b`: the names go on after a comma
                i += 1
            servers.extend(_parse_servers(names))
            continue
        token = token.rstrip(".,;")  # `today.`, `2024-05-13,`: what a phone adds
        low = token.lower()
        if not token:
            pass
        elif low.startswith("server="):
            servers.extend(_parse_servers(token.split("=", 1)[1]))
        elif ".." in token and day_from is None:
            first, _, last = token.partition("..")
            day_from, day_to = _parse_day(first, local_now), _parse_day(last, local_now)
            if day_to < day_from:
                raise UsageError(f"The range {token} ends before it starts.")
        elif day_from is None and (_DATE.match(token) or low in ("today", "yesterday")):
            day_from = day_to = _parse_day(token, local_now)
        elif at is None and _TIME.match(token):
            at = _parse_time(token)
        else:
            raise UsageError(f"I don't understand “{_shorten(token)}”. {EXAMPLE}")
        i += 1
    start = end = None
    if day_from is not None and day_to is not None:
        start = datetime.combine(day_from, time(0), tzinfo=zone)
        end = datetime.combine(day_to + timedelta(days=1), time(0), tzinfo=zone)
    if at is not None:
        if day_from != day_to:
            raise UsageError("A time of day goes with one date, not a range.")
        start, end = _around(datetime.combine(day_from or local_now.date(), at, tzinfo=zone))
    return Query(
        kind=kind,
        target=target,
        also_message_id=bracketed,
        start=start,
        end=end,
        servers=tuple(dict.fromkeys(servers)),
        text=text,
        zone=zone,
    )


def _tokens(text: str) -> list[str]:
    """Split on spaces after undoing what phones and chat clients do to typed text."""
    text = _DASH_RANGE.sub(r"\1..\2", text)
    text = _SPACED_MERIDIEM.sub(r"\1\2", text)
    tokens = [t.strip(_QUOTES) if not t.startswith("<") else t for t in text.split(" ")]
    return [t for t in tokens if t]


def _parse_time(token: str) -> time:
    match = _TIME.match(token)
    assert match is not None
    hour, minute, meridiem = int(match[1]), int(match[2]), (match[3] or "").lower()
    if meridiem:
        if not 1 <= hour <= 12:
            raise UsageError(f"“{token}” is not a time: with am/pm the hour is 1 to 12.")
        hour = hour % 12 + (12 if meridiem == "p" else 0)
    elif hour > 23:
        raise UsageError(f"“{token}” is not a time like 14:30.")
    return time(hour, minute)


def _around(moment: datetime) -> tuple[datetime, datetime]:
    """An hour either side of a wall-clock time, counted in real time (UTC): across a DST
    change the window is still two real hours wide."""
    zone = moment.tzinfo
    utc = moment.astimezone(UTC)
    return (utc - TIME_SLACK).astimezone(zone), (utc + TIME_SLACK).astimezone(zone)


def _parse_target(token: str) -> tuple[TargetKind, str, bool]:
    """The target's kind, its normalised form, and whether an address came in <angle brackets>
    (then it is searched as a message-id too)."""
    mailto = _MAILTO.match(token)
    if mailto is not None:
        token = mailto.group(1)
    else:
        link = _SLACK_LINK.match(token)  # Slack also links bare domains: <http://x.org|x.org>
        if link is not None:
            token = link.group(2)
    token = token.rstrip(",;") if token.startswith("<") else token.rstrip(".,;")
    if _ADDRESS.match(token):
        return TargetKind.ADDRESS, token.lower().rstrip("."), False
    if token.startswith("<") and token.endswith(">") and _ADDRESS.match(token[1:-1]):
        return TargetKind.ADDRESS, token[1:-1].lower().rstrip("."), True
    if _DOMAIN_ONLY.match(token):
        return TargetKind.DOMAIN, token.lower().rstrip("."), False
    if _MESSAGE_ID.match(token):
        return TargetKind.MESSAGE_ID, token[1:-1], False
    try:
        ip = ipaddress.ip_address(token.strip("[]"))
    except ValueError:
        pass
    else:
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            return TargetKind.CLIENT_IP, f"::ffff:{ip.ipv4_mapped}", False  # as Postfix logs it
        return TargetKind.CLIENT_IP, str(ip), False
    if is_queue_id(token):
        return TargetKind.QUEUE_ID, token, False
    raise UsageError(
        f"“{_shorten(token)}” is not an address, @domain, queue ID, <message-id> or IP. {EXAMPLE}"
    )


def _parse_day(token: str, local_now: datetime) -> date:
    low = token.lower()
    if low == "today":
        return local_now.date()
    if low == "yesterday":
        return local_now.date() - timedelta(days=1)
    if not _DATE.match(token):
        raise UsageError(f"“{_shorten(token)}” is not a date like 2024-05-13.")
    try:
        return date.fromisoformat(token)
    except ValueError as exc:
        raise UsageError(f"“{token}” is not a real date.") from exc


def _parse_servers(token: str) -> list[str]:
    names = [n.strip(_QUOTES + ".") for n in token.split(",")]
    names = [n for n in names if n]
    for name in names:
        if not _SERVER.match(name):
            raise UsageError(f"“{_shorten(name)}” is not a server name.")
    return names


def _shorten(token: str, limit: int = 60) -> str:
    return token if len(token) <= limit else token[: limit - 1] + "…"
