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

from bot.i18n import ENGLISH, Language
from bot.result import Diagnosis, SearchResult
from parsers.i18n import N_

DEFAULT_CONTACT = N_("the people who run mailtrace")


def empty_headline(result: SearchResult, lang: Language = ENGLISH) -> str:
    """'X on D: nothing found', '…: nothing found in what could be read (…)', or
    '…: couldn't search (…)'."""
    _ = lang.gettext
    what = result.query.describe(lang)
    if result.could_not_search:
        return _("{what}: couldn't search ({failed})").format(
            what=what, failed=_what_failed(result, lang)
        )
    if not result.complete:
        return _("{what}: nothing found in what could be read ({failed})").format(
            what=what, failed=_what_failed(result, lang)
        )
    return _("{what}: nothing found").format(what=what)


def empty_summary(result: SearchResult, lang: Language = ENGLISH) -> str:
    """One sentence for where found answers list their messages."""
    _ = lang.gettext
    if result.could_not_search:
        return _("I could not read any log for this; the thread says why.")
    if not result.complete:
        return _(
            "I found no log line for it, but some logs could not be read; the thread says why."
        )
    return _("I found no log line for it; the thread says why.")


def window_line(result: SearchResult, lang: Language = ENGLISH) -> str | None:
    """The window when no date was given: 'No date given: searched the last 7 days.'"""
    if result.query.start is not None:
        return None
    days = result.default_days
    if days is None:
        return lang.gettext("No date given: searched all the logs.")
    return lang.ngettext(
        "No date given: searched the last day.", "No date given: searched the last {n} days.", days
    ).format(n=days)


def diagnosis_lines(
    result: SearchResult, contact: str | None = None, lang: Language = ENGLISH
) -> list[str]:
    """The ranked causes as numbered lines. With `contact` (Slack), next steps that need
    someone with server access say whom to ask, and server failures show no details."""
    _ = lang.gettext
    lines: list[str] = []
    for rank, d in enumerate(result.diagnosis, start=1):
        lines.append(f"{rank}. {d.cause}")
        lines.extend("   " + _("evidence: {e}").format(e=e) for e in _evidence(d, contact))
        step = _next_step(d, contact, lang)
        if step:
            lines.append("   " + _("next: {step}").format(step=step))
    return lines


def _evidence(d: Diagnosis, contact: str | None) -> tuple[str, ...]:
    if contact is None or d.code != "servers_failed":
        return d.evidence
    # "mx2: authentication failed: key file /etc/… …" -> "mx2: authentication failed"
    return tuple(":".join(e.split(":", 2)[:2]) for e in d.evidence)


def _next_step(d: Diagnosis, contact: str | None, lang: Language) -> str:
    _ = lang.gettext
    if contact is None or not d.for_operator:
        return d.next_step
    contact = _(contact) if contact == DEFAULT_CONTACT else contact
    if d.code == "servers_failed":
        return _("Ask {contact} to check the servers above, then ask me again.").format(
            contact=contact
        )
    return _("Ask {contact} to check the log files above, then ask me again.").format(
        contact=contact
    )


def _what_failed(result: SearchResult, lang: Language) -> str:
    _ = lang.gettext
    parts = []
    if result.failures:
        names = ", ".join(f.server for f in result.failures)
        parts.append(_("{servers} could not be searched").format(servers=names))
    unreadable = result.unreadable_files
    if unreadable:
        count = len(unreadable)
        parts.append(
            lang.ngettext(
                "{n} log file could not be read", "{n} log files could not be read", count
            ).format(n=count)
        )
    return _("; ").join(parts)
