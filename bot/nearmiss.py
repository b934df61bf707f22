"""Near misses: when nothing names the target, look (cheaply) for what almost does.

Strategy: only the files the search already chose for the window are read again, with one
fixed-string grep each, and each look stops after `MAX_LINES` lines, so a near-miss search
costs at most a few greps whatever the retention. What is looked for:
  similar   an address at the same domain whose local part is a few edits away (grep `@domain`),
            or the same local part at a domain a few edits away (grep `local@`);
  elsewhere the target on servers the query left out with `on ...`.
The lines pass 1 already read give the rest (see `classify_stray`): the target in another role
(in a header, a SASL login, a relay), and a client that connected without sending mail (asked
for by its IP, or by a sender it named only in such a session, e.g. in a pipelined command);
`session_ends` tells each such session in one line.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from bot.errors import MailtraceError
from bot.query import Query, TargetKind
from bot.sources.source import LogFile, LogSource
from parsers.i18n import ENGLISH, Translator
from parsers.models import EventKind, LogEvent
from parsers.similar import closest

MAX_LINES = 20_000  # per look and server: a near miss is a hint, not a second search
MAX_SAMPLES = 3
# smtpd's words for a session that ended without a queued message (Postfix smtpd(8) logs these
# as "lost connection after CMD from host[ip]", "timeout after CMD ...", "too many errors after
# CMD ...", and TLS handshakes that fail as "SSL_accept error from host[ip]").
_NO_MAIL = re.compile(
    r"\b(lost connection after|timeout after|too many errors after|SSL_accept error from|"
    r"TLS library problem|improper command pipelining after)\b"
)
# how a session ended, most telling first (a reason, then how it ended, then what led there)
_ENDINGS = (
    "too many errors after",
    "SSL_accept error from",
    "timeout after",
    "lost connection after",
    "improper command pipelining after",
)
_PROCESS = re.compile(r"(\S+) ([\w/.-]+\[\d+\]): ")  # "mx-s postfix/smtpd[21683]: "
_CLIENT = re.compile(r" from [^\s\[]*\[([0-9A-Fa-f:.]+)\]")  # "from unknown[127.0.0.5]"
_ADDRESS_CHARS = "A-Za-z0-9._%+=-"


def names_whole(text: str, needle: str) -> bool:
    """Does the line contain the needle as a whole address, domain or token (not inside a
    longer one: `ann@x.org` is not in `joann@x.org`, `@x.org` is not in `@x.org.uk`)?"""
    before = "" if needle[0] in "@<[" else rf"(?<![{_ADDRESS_CHARS}])"
    after = "" if needle[-1] in ">]" else r"(?![A-Za-z0-9-]|\.[A-Za-z0-9])"
    return re.search(before + re.escape(needle) + after, text, re.IGNORECASE) is not None


def ended_without_mail(event: LogEvent) -> bool:
    """A session-level line saying the client went away, timed out or failed TLS."""
    return event.queue_id is None and bool(_NO_MAIL.search(event.text or event.raw))


def classify_stray(query: Query, event: LogEvent) -> str | None:
    """For a line in the window that contains the needle but does not name the target as sender,
    recipient, queue ID ...: 'connection' (the client came and left without mail), 'role'
    (the target is in the line in another role), or None (a longer address that merely
    contains the text)."""
    if not names_whole(event.raw, query.needle):
        return None
    if ended_without_mail(event):
        return "connection"
    if query.kind is TargetKind.CLIENT_IP and event.kind in (
        EventKind.CONNECT,
        EventKind.DISCONNECT,
    ):
        return "connection"
    return "role"


def session_ends(lines: Iterable[str]) -> list[str]:
    """One line per client session (the lines of one smtpd process from `connect from` on),
    the one that says best how it ended, in log order; at most `MAX_SAMPLES`, then a count."""
    sessions: list[list[str]] = []
    current: dict[str, list[str]] = {}
    for line in lines:
        found = _PROCESS.search(line)
        process = " ".join(found.groups()) if found else line
        if process not in current or " connect from " in line:
            current[process] = []
            sessions.append(current[process])
        current[process].append(line)
    told = [_ending(s) for s in sessions]
    if len(told) > MAX_SAMPLES:
        rest = len(told) - MAX_SAMPLES
        told = [*told[:MAX_SAMPLES], f"… and {rest} more session{'s' if rest != 1 else ''}"]
    return told


_MORE_SESSIONS = re.compile(r"… and (\d+) more sessions?")


def reword_count(line: str, tr: Translator = ENGLISH) -> str:
    """`session_ends`' count line ("… and 4 more sessions", as kept in the result) in `tr`;
    log lines pass unchanged."""
    found = _MORE_SESSIONS.fullmatch(line)
    if found is None:
        return line
    n = int(found.group(1))
    return tr.ngettext("… and {n} more session", "… and {n} more sessions", n).format(n=n)


def _ending(session: Sequence[str]) -> str:
    for words in _ENDINGS:
        for line in session:
            if words in line:
                return line
    return next((line for line in session if " connect from " not in line), session[0])


def clients_in(lines: Iterable[str]) -> list[str]:
    """The client IPs the lines name ("from unknown[127.0.0.5]"), each once, in order."""
    return list(dict.fromkeys(m.group(1) for line in lines for m in _CLIENT.finditer(line)))


async def _scan(
    source: LogSource, files: Sequence[LogFile], pattern: str, *, ignore_case: bool
) -> list[LogEvent]:
    """One capped fixed-string grep over `files`; unreadable files are skipped, errors end it."""
    events: list[LogEvent] = []
    with contextlib.suppress(MailtraceError):
        search = source.grep(files, [pattern], ignore_case=ignore_case)
        async with contextlib.aclosing(search) as lines:
            async for event in lines:
                events.append(event)
                if len(events) >= MAX_LINES:
                    break
    return events


def _in_window(event: LogEvent, start: datetime | None, end: datetime | None) -> bool:
    stamp = event.timestamp
    if stamp is None:
        return True
    return (start is None or stamp >= start) and (end is None or stamp < end)


def _addresses(
    events: Sequence[LogEvent], start: datetime | None, end: datetime | None
) -> set[str]:
    return {
        a.lower()
        for e in events
        if _in_window(e, start, end)
        for a in (e.sender, e.recipient, e.orig_to)
        if a and "@" in a
    }


async def similar_addresses(
    source: LogSource,
    files: Sequence[LogFile],
    query: Query,
    start: datetime | None,
    end: datetime | None,
) -> list[str]:
    """Addresses seen in the window a few edits from an asked address: the same domain with a
    close local part, or the same local part at a close domain. Closest first."""
    if query.kind is not TargetKind.ADDRESS or not files:
        return []
    local, _, domain = query.target.rpartition("@")
    same_domain = _addresses(await _scan(source, files, "@" + domain, ignore_case=True), start, end)
    near = [
        f"{candidate}@{domain}"
        for candidate in closest(
            local, (a.rpartition("@")[0] for a in same_domain if a.endswith("@" + domain))
        )
    ]
    same_local = _addresses(await _scan(source, files, local + "@", ignore_case=True), start, end)
    domains = (a.rpartition("@")[2] for a in same_local if a.rpartition("@")[0] == local)
    near += [f"{local}@{candidate}" for candidate in closest(domain, domains)]
    return near


async def servers_naming(
    sources: Sequence[LogSource],
    query: Query,
    start: datetime | None,
    end: datetime | None,
    matches: Callable[[Query, LogEvent], bool],
) -> list[str]:
    """Of `sources` (the servers an `on ...` left out), those with a line naming the target in
    the window. `matches(query, event)` is the search's own test."""
    found = []
    for source in sources:
        with contextlib.suppress(MailtraceError):
            files = [f for f in await source.list_files() if f.covers(start, end)]
            events = await _scan(source, files, query.needle, ignore_case=query.ignore_case)
            if any(_in_window(e, start, end) and matches(query, e) for e in events):
                found.append(source.name)
    return found
