"""How long and when, for one recipient: the spans ("3 days"), "… ago", and the time lines under
a recipient that is not simply delivered (queued since, attempts, when Postfix gives up).

Strategy: one place decides how time is told, so the story (story.py) only picks which lines a
status gets. Every moment is written with the asker's `Language` (its date format), every span
with its plural forms; `now` comes from the caller, so "ago" is reproducible in tests.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo

from bot.i18n import ENGLISH, Language
from parsers.journey import Outcome
from parsers.models import Status


def duration(span: timedelta, lang: Language = ENGLISH) -> str:
    """'3 days', '5 hours', '12 minutes', '40 seconds' (the largest unit that fits)."""
    seconds = max(0, int(span.total_seconds()))
    if seconds >= 86400:
        n = seconds // 86400
        return lang.ngettext("{n} day", "{n} days", n).format(n=n)
    if seconds >= 3600:
        n = seconds // 3600
        return lang.ngettext("{n} hour", "{n} hours", n).format(n=n)
    if seconds >= 60:
        n = seconds // 60
        return lang.ngettext("{n} minute", "{n} minutes", n).format(n=n)
    return lang.ngettext("{n} second", "{n} seconds", seconds).format(n=seconds)


def outcome_times(o: Outcome, zone: tzinfo, now: datetime, lang: Language) -> list[str]:
    _ = lang.gettext
    at = lang.when(o.at, zone)
    attempts = lang.ngettext("{n} attempt", "{n} attempts", o.attempts).format(n=o.attempts)
    if o.status is Status.DEFERRED and o.temporary:
        return [
            lang.ngettext(
                "{n} refusal, the last at {time}.", "{n} refusals, the last at {time}.", o.attempts
            ).format(n=o.attempts, time=at)
        ]
    if o.status is Status.DEFERRED:
        lines = [
            _("Queued since {since} ({ago}); {attempts} so far, the last at {time}.").format(
                since=lang.when(o.deferred_since, zone),
                ago=ago(o.deferred_since, now, lang),
                attempts=attempts,
                time=at,
            )
        ]
        if o.gives_up_at is not None and o.gives_up_at <= now:
            lines.append(
                _(
                    "By {host}'s queue lifetime it should have been given up at {time}, but the "
                    "searched logs say nothing of it: look at the queue, or check the lifetime "
                    "in the configuration."
                ).format(host=o.host, time=lang.when(o.gives_up_at, zone))
            )
        elif o.gives_up_at is not None:
            lines.append(
                _(
                    "Postfix gives up at {time} (queue lifetime of {host}) and returns it to "
                    "the sender."
                ).format(time=lang.when(o.gives_up_at, zone), host=o.host)
            )
        return lines
    if o.status is Status.UNKNOWN:
        return [
            _(
                "Accepted {ago}; nothing was logged for it after that. It is still in {host}'s "
                "queue, or the searched logs end there: ask the mail team to look at the queue."
            ).format(ago=ago(o.deferred_since or o.at, now, lang), host=o.host)
        ]
    if o.status is Status.HELD:
        return [_("On hold since {time} ({ago}).").format(time=at, ago=ago(o.at, now, lang))]
    if o.status is Status.EXPIRED:
        if o.at and o.queued_at:
            return [
                _("Given up at {time} after {attempts} over {span}.").format(
                    time=at, attempts=attempts, span=duration(o.at - o.queued_at, lang)
                )
            ]
        return [_("Given up at {time} after {attempts}.").format(time=at, attempts=attempts)]
    if o.attempts > 1:
        return [_("At {time}, after {attempts}.").format(time=at, attempts=attempts)]
    return [_("At {time}.").format(time=at)]


def ago(moment: datetime | None, now: datetime, lang: Language) -> str:
    _ = lang.gettext
    if moment is None:
        return _("at an unknown time")
    if moment > now:
        return _("in the future by the server's clock")
    return _("{span} ago").format(span=duration(now - moment, lang))
