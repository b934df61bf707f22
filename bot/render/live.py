"""The live queue of one waiting recipient, in plain lines under its story.

Strategy: the logs say what happened until they were read; the queue says what is true now.
So the lines start with where the mail is now (which queue, or gone) and when that was checked,
then the queue's own reason, the next try and the give-up time. A deferred recipient's give-up
time is already told from the logs' side (with the server's lifetime when postconf was read),
so it is not repeated here. No markup: the renderers escape and decorate.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from bot.i18n import ENGLISH, Language
from parsers.journey import Outcome
from parsers.models import Status
from parsers.queue import LiveQueue


def _in(moment: datetime, now: datetime, lang: Language) -> str:
    seconds = int((moment - now).total_seconds())
    if seconds <= 0:
        return lang.gettext("any moment now")
    if seconds >= 86400:
        n = round(seconds / 86400)
        return lang.ngettext("in about {n} day", "in about {n} days", n).format(n=n)
    if seconds >= 3600:
        n = round(seconds / 3600)
        return lang.ngettext("in about {n} hour", "in about {n} hours", n).format(n=n)
    if seconds >= 60:
        n = round(seconds / 60)
        return lang.ngettext("in about {n} minute", "in about {n} minutes", n).format(n=n)
    return lang.ngettext("in {n} second", "in {n} seconds", seconds).format(n=seconds)


def _where(state: LiveQueue, lang: Language, checked: str, since: str | None) -> str:
    """Which queue the message is in, since when, as checked: one sentence."""
    _ = lang.gettext
    if since is None:
        words = {
            "active": _("Being delivered right now: in {host}'s active queue (checked {time})."),
            "hold": _("In {host}'s hold queue (checked {time})."),
            "deferred": _("Still in {host}'s deferred queue (checked {time})."),
        }.get(state.queue_name or "", _("In {host}'s {queue} queue (checked {time})."))
    else:
        words = {
            "active": _(
                "Being delivered right now: in {host}'s active queue since {since} "
                "(checked {time})."
            ),
            "hold": _("In {host}'s hold queue since {since} (checked {time})."),
            "deferred": _("Still in {host}'s deferred queue since {since} (checked {time})."),
        }.get(
            state.queue_name or "", _("In {host}'s {queue} queue since {since} (checked {time}).")
        )
    return words.format(host=state.host, queue=state.queue_name, since=since, time=checked)


def live_lines(
    o: Outcome, state: LiveQueue | None, zone: tzinfo, lang: Language = ENGLISH
) -> list[str]:
    """What the server's queue said about this recipient's message when it was checked."""
    if state is None:
        return []
    _ = lang.gettext
    checked = lang.when(state.checked_at, zone)
    if state.queue_name is None:
        return [
            _(
                "Not in {host}'s queue any more (checked {time}): it ended after the logs were "
                "read. Ask again to see how."
            ).format(host=state.host, time=checked)
        ]
    since = lang.when(state.arrival_time, zone) if state.arrival_time else None
    out = [_where(state, lang, checked, since)]
    reason = next(
        (r.delay_reason for r in state.recipients if r.address == o.address and r.delay_reason),
        None,
    )
    if reason and not (o.reason or "").endswith(reason):  # the logs' words are already shown
        out.append(_("The queue says: “{words}”").format(words=reason))
    if state.queue_name == "hold":
        out.append(_("It is not retried until an admin releases it (postsuper -H) or deletes it."))
    if state.forced_expire:
        out.append(
            _("An admin asked Postfix to return it: it goes back to the sender at the next try.")
        )
    if state.next_retry_estimate is not None:
        out.append(
            _("Next try expected around {time} ({when}).").format(
                time=lang.when(state.next_retry_estimate, zone),
                when=_in(state.next_retry_estimate, state.checked_at, lang),
            )
        )
    if state.gives_up_at is not None and o.status is not Status.DEFERRED:
        out.append(
            _(
                "Postfix gives up at {time} (queue lifetime of {host}) and returns it to "
                "the sender."
            ).format(time=lang.when(state.gives_up_at, zone), host=state.host)
        )
    return out
