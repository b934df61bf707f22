"""The parts of an answer about what was (not) searched: the empty-answer headline, the
ranked causes, and the line that states the window.

Strategy: three kinds of empty answer are never confused. *Couldn't search*: nothing at all
could be read (every server failed, or every file covering the window was unreadable); the
headline says so and nothing claims the mail is absent. *Nothing found, incomplete*: some
servers or files could not be read; the headline names that. *Nothing found*: every file
covering the window was read. The causes read differently for the two audiences: on the
command line the operator gets the operator's next step (`mailtrace doctor`, permissions;
with `--log`, the path and its permissions: see `diagnose.for_local_files`); in Slack a
teammate is told whom to ask (the configured contact), never key paths.
"""

from __future__ import annotations

from bot.result import Diagnosis, SearchResult

DEFAULT_CONTACT = "the people who run mailtrace"


def empty_headline(result: SearchResult) -> str:
    """'X on D: nothing found', '…: nothing found in what could be read (…)', or
    '…: couldn't search (…)'."""
    what = result.query.describe()
    if result.could_not_search:
        return f"{what}: couldn't search ({_what_failed(result)})"
    if not result.complete:
        return f"{what}: nothing found in what could be read ({_what_failed(result)})"
    return f"{what}: nothing found"


def empty_summary(result: SearchResult) -> str:
    """One sentence for where found answers list their messages."""
    if result.could_not_search:
        return "I could not read any log for this; the thread says why."
    if not result.complete:
        return "I found no log line for it, but some logs could not be read; the thread says why."
    return "I found no log line for it; the thread says why."


def window_line(result: SearchResult) -> str | None:
    """The window when no date was given: 'No date given: searched the last 7 days.'"""
    if result.query.start is not None:
        return None
    days = result.default_days
    if days is None:
        return "No date given: searched all the logs."
    return f"No date given: searched the last {days} day{'s' if days != 1 else ''}."


def diagnosis_lines(result: SearchResult, contact: str | None = None) -> list[str]:
    """The ranked causes as numbered lines. With `contact` (Slack), next steps that need
    someone with server access say whom to ask, and server failures show no details."""
    lines: list[str] = []
    for rank, d in enumerate(result.diagnosis, start=1):
        lines.append(f"{rank}. {d.cause}")
        lines.extend(f"   evidence: {e}" for e in _evidence(d, contact))
        step = _next_step(d, contact)
        if step:
            lines.append(f"   next: {step}")
    return lines


def _evidence(d: Diagnosis, contact: str | None) -> tuple[str, ...]:
    if contact is None or d.code != "servers_failed":
        return d.evidence
    # "mx2: authentication failed: key file /etc/… …" -> "mx2: authentication failed"
    return tuple(":".join(e.split(":", 2)[:2]) for e in d.evidence)


def _next_step(d: Diagnosis, contact: str | None) -> str:
    if contact is None or not d.for_operator:
        return d.next_step
    what = "the servers above" if d.code == "servers_failed" else "the log files above"
    return f"Ask {contact} to check {what}, then ask me again."


def _what_failed(result: SearchResult) -> str:
    parts = []
    if result.failures:
        names = ", ".join(f.server for f in result.failures)
        parts.append(f"{names} could not be searched")
    unreadable = result.unreadable_files
    if unreadable:
        count = len(unreadable)
        parts.append(f"{count} log file{'s' if count != 1 else ''} could not be read")
    return "; ".join(parts)
