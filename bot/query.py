"""What a person types after `/mailtrace` (or `mailtrace trace`) -> a validated Query.

Grammar (tokens separated by spaces; order after the target is free):

    TARGET [DATE | DATE..DATE] [TIME] [on SERVER[,SERVER...]]

    TARGET  an address (a@b.example, root@localhost, Slack's <mailto:a@b|a@b> too), @domain,
            a queue ID, a <message-id>, or a client IP (v4 or v6); <a@b> is searched both
            as an address and as a message-id
    DATE    2024-05-13, 2024/5/13, 5/13, 5月13日, 2024年5月13日, today / 今日, yesterday / 昨日,
            一昨日; a range DATE..DATE, DATE~DATE or DATE〜DATE (or with an en/em dash)
    TIME    10:00, 4:58pm, 16時, 16時30分, 午後4時 (narrows the search to an hour either side)
    SERVER  a configured server name; `on mx-a,mx-b` or `on mx-a, mx-b`

The text is NFKC-normalised first, so what a Japanese IME types (full-width letters and digits,
＠, ．, ／, ：, the ideographic space) reads as its ASCII form; a year-less 5/13 is the latest
such day that is not in the future. What a phone's autocorrect adds is forgiven where the
meaning is clear: smart quotes around a token, a trailing dot or comma (`today.`), a dash for
`..`, `4:58 pm`, a weekday after a date (`5月13日(月)`). Anything else is a UsageError of one
line, with at most one example, in the asker's language. Nothing here touches a shell: the
values that leave this module are checked against strict patterns, and the fetch layer quotes
them anyway.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from bot.errors import UsageError
from bot.i18n import ENGLISH, Language
from bot.usage import example, usage
from parsers.i18n import ENGLISH as EN_WORDS
from parsers.i18n import Translator
from parsers.postfix import is_queue_id

USAGE = usage()
EXAMPLE = example()
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
# 2024/05/13, 2024/5/13, 5/13, 2024年5月13日, 5月13日 (after NFKC: ASCII digits and slashes)
_SLASH_DATE = re.compile(r"^(?:(\d{4})/)?(\d{1,2})/(\d{1,2})$")
_KANJI_DATE = re.compile(r"^(?:(\d{4})年)?(\d{1,2})月(\d{1,2})日$")
_RELATIVE_DAYS = {"today": 0, "今日": 0, "本日": 0, "yesterday": 1, "昨日": 1, "一昨日": 2}
_DAY_FORM = (
    r"(?:\d{4}-\d{2}-\d{2}|(?:\d{4}/)?\d{1,2}/\d{1,2}|(?:\d{4}年)?\d{1,2}月\d{1,2}日"
    r"|today|yesterday|今日|本日|一昨日|昨日)"
)
# 5月13日(月): the weekday a calendar shows after a date says nothing more
_WEEKDAY = re.compile(rf"({_DAY_FORM})\s*\([月火水木金土日]\)")
# 16時, 16時30分, 午後4時, 午前10時半, 午後4:30 -> 16:00, 16:30, 16:00, 10:30, 16:30
_KANJI_TIME = re.compile(
    r"(?:(午前|午後)\s*)?(?<!\d)(\d{1,2})(?:時(?:(\d{1,2})分|(半))?|:(\d{2})(?=\s|$))"
)
# a date glued to a time: 5月13日16時, 昨日午後4時
_GLUED = re.compile(r"(日)(?=\d|午)")
_TIME = re.compile(r"^(\d{1,2}):([0-5]\d)(?:([ap])\.?m\.?)?$", re.IGNORECASE)
_QUOTES = "“”„‘’‚\"'`«»"
_DASH_RANGE = re.compile(rf"({_DAY_FORM})\s*(?:[–—~〜]|\.\.)\s*({_DAY_FORM})", re.I)
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

    def describe_target(self, tr: Translator = EN_WORDS) -> str:
        """'sender2@example.net', 'queue ID 4104E3D', 'client 203.0.113.7', ..."""
        _ = tr.gettext
        if self.also_message_id:
            return _("<{target}> (as address or message-id)").format(target=self.target)
        words = {
            TargetKind.ADDRESS: "{target}",
            TargetKind.DOMAIN: "{target}",
            TargetKind.QUEUE_ID: _("queue ID {target}"),
            TargetKind.MESSAGE_ID: _("message-id <{target}>"),
            TargetKind.CLIENT_IP: _("client {target}"),
        }[self.kind]
        return words.format(target=self.target)

    def describe(self, lang: Language = ENGLISH) -> str:
        """'sender2@example.net on 2024-05-13' for headlines."""
        _ = lang.gettext
        what = self.describe_target(lang)
        if self.start is None or self.end is None:
            return what
        if self.end - self.start == timedelta(days=1) and self.start.time() == time(0):
            return _("{what} on {day}").format(what=what, day=lang.day(self.start))
        return _("{what} between {start} and {end}").format(
            what=what, start=lang.minute(self.start), end=lang.minute(self.end)
        )


def parse_query(text: str, *, now: datetime, zone: tzinfo, tr: Translator = EN_WORDS) -> Query:
    """Parse typed text into a Query; `now` and `zone` are the asker's (Slack gives the zone);
    usage errors are worded with `tr`."""
    _ = tr.gettext
    text = unicodedata.normalize("NFKC", text).strip()
    if not text:
        raise UsageError(_("Tell me what to look for.") + " " + example(tr))
    if len(text) > MAX_QUERY_LENGTH:
        raise UsageError(
            _("That query is longer than {limit} characters.").format(limit=MAX_QUERY_LENGTH)
        )
    if any(ch in text for ch in "\n\r\t\0"):
        raise UsageError(_("Put the whole query on one line."))
    tokens = _tokens(text)
    if not tokens:
        raise UsageError(_("Tell me what to look for.") + " " + example(tr))
    kind, target, bracketed = _parse_target(tokens[0], tr)
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
            servers.extend(_parse_servers(names, tr))
            continue
        token = token.rstrip(".,;。、")  # `today.`, `2024-05-13,`: what a phone adds
        low = token.lower()
        if not token:
            pass
        elif low.startswith("server="):
            servers.extend(_parse_servers(token.split("=", 1)[1], tr))
        elif ".." in token and day_from is None:
            first, _sep, last = token.partition("..")
            day_from, day_to = _parse_day(first, local_now, tr), _parse_day(last, local_now, tr)
            if day_to < day_from:
                raise UsageError(_("The range {range} ends before it starts.").format(range=token))
        elif day_from is None and _is_day(token):
            day_from = day_to = _parse_day(token, local_now, tr)
        elif at is None and _TIME.match(token):
            at = _parse_time(token, tr)
        else:
            raise UsageError(
                _("I don't understand “{token}”.").format(token=_shorten(token)) + " " + example(tr)
            )
        i += 1
    start = end = None
    if day_from is not None and day_to is not None:
        start = datetime.combine(day_from, time(0), tzinfo=zone)
        end = datetime.combine(day_to + timedelta(days=1), time(0), tzinfo=zone)
    if at is not None:
        if day_from != day_to:
            raise UsageError(_("A time of day goes with one date, not a range."))
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
    """Split on spaces after undoing what phones, chat clients and IMEs do to typed text.
    The target (the first word) is left as typed: only what follows it is rewritten."""
    target, _sep, rest = text.partition(" ")
    rest = _WEEKDAY.sub(r"\1", rest)
    rest = _GLUED.sub(r"\1 ", rest)
    rest = _KANJI_TIME.sub(_kanji_time, rest)
    rest = _DASH_RANGE.sub(r"\1..\2", rest)
    rest = _SPACED_MERIDIEM.sub(r"\1\2", rest)
    words = [target, *rest.split(" ")]
    tokens = [t.strip(_QUOTES) if not t.startswith("<") else t for t in words]
    return [t for t in tokens if t]


def _kanji_time(match: re.Match[str]) -> str:
    """'16時' -> '16:00', '午後4時半' -> '16:30'; a plain '16:03' stays as typed."""
    meridiem, hour, minute, half, colon = match.groups()
    if meridiem is None and colon is not None:
        return match[0]
    h = int(hour)
    m = int(minute or colon or (30 if half else 0))
    if meridiem is not None and h > 12:
        return match[0]  # 午後13時 is no time: let the grammar say so
    if meridiem == "午後" and h < 12:
        h += 12
    elif meridiem == "午前" and h == 12:
        h = 0
    return f"{h}:{m:02d}"


def _parse_time(token: str, tr: Translator) -> time:
    _ = tr.gettext
    match = _TIME.match(token)
    assert match is not None
    hour, minute, meridiem = int(match[1]), int(match[2]), (match[3] or "").lower()
    if meridiem:
        if not 1 <= hour <= 12:
            raise UsageError(
                _("“{token}” is not a time: with am/pm the hour is 1 to 12.").format(token=token)
            )
        hour = hour % 12 + (12 if meridiem == "p" else 0)
    elif hour > 23:
        raise UsageError(_("“{token}” is not a time like 14:30.").format(token=token))
    return time(hour, minute)


def _around(moment: datetime) -> tuple[datetime, datetime]:
    """An hour either side of a wall-clock time, counted in real time (UTC): across a DST
    change the window is still two real hours wide."""
    zone = moment.tzinfo
    utc = moment.astimezone(UTC)
    return (utc - TIME_SLACK).astimezone(zone), (utc + TIME_SLACK).astimezone(zone)


def _parse_target(token: str, tr: Translator) -> tuple[TargetKind, str, bool]:
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
        tr.gettext("“{token}” is not an address, @domain, queue ID, <message-id> or IP.").format(
            token=_shorten(token)
        )
        + " "
        + example(tr)
    )


def _is_day(token: str) -> bool:
    return bool(
        _DATE.match(token)
        or _SLASH_DATE.match(token)
        or _KANJI_DATE.match(token)
        or token.lower() in _RELATIVE_DAYS
    )


def _parse_day(token: str, local_now: datetime, tr: Translator) -> date:
    """A typed day; a year-less one (5/13, 5月13日) is the latest that is not in the future."""
    _ = tr.gettext
    today = local_now.date()
    back = _RELATIVE_DAYS.get(token.lower())
    if back is not None:
        return today - timedelta(days=back)
    parts = _SLASH_DATE.match(token) or _KANJI_DATE.match(token)
    try:
        if _DATE.match(token):
            return date.fromisoformat(token)
        if parts is None:
            raise UsageError(
                _("“{token}” is not a date like 2024-05-13.").format(token=_shorten(token))
            )
        year, month, day = parts.groups()
        if year is not None:
            return date(int(year), int(month), int(day))
        guess = date(today.year, int(month), int(day))
        return guess if guess <= today else guess.replace(year=today.year - 1)
    except ValueError as exc:
        raise UsageError(_("“{token}” is not a real date.").format(token=token)) from exc


def _parse_servers(token: str, tr: Translator) -> list[str]:
    names = [n.strip(_QUOTES + ".") for n in token.split(",")]
    names = [n for n in names if n]
    for name in names:
        if not _SERVER.match(name):
            raise UsageError(
                tr.gettext("“{name}” is not a server name.").format(name=_shorten(name))
            )
    return names


def _shorten(token: str, limit: int = 60) -> str:
    return token if len(token) <= limit else token[: limit - 1] + "…"
