"""Words of the follow-ups: what a watch says when it starts, ends, or cannot reach a server.

Strategy: one sentence per event, in the asker's language, with each recipient on its own line
(its state's emoji, its address, the state in words and Postfix's own reason). No markup: the
Slack side escapes the lines and adds the mention; the CLI prints them as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo

from bot.i18n import Language
from bot.render.story import STATUS_EMOJI
from bot.watch.store import Target
from parsers.i18n import N_
from parsers.models import Status

_STATE_WORDS: dict[Status, str] = {
    Status.SENT: N_("delivered"),
    Status.BOUNCED: N_("bounced"),
    Status.DEFERRED: N_("still waiting in the queue"),
    Status.EXPIRED: N_("expired"),
    Status.REJECTED: N_("rejected"),
    Status.DISCARDED: N_("discarded"),
    Status.HELD: N_("on hold"),
    Status.DELETED: N_("deleted"),
    Status.UNKNOWN: N_("unknown"),
}


def target_line(t: Target, lang: Language) -> str:
    """'✅ a@example.org — delivered (mx-a 4F1A2B3C4D)', with Postfix's words when it has some."""
    status = Status(t.status)
    line = lang.gettext("{address} — {state} ({server} {queue_id})").format(
        address=t.address,
        state=lang.gettext(_STATE_WORDS[status]),
        server=t.server,
        queue_id=t.queue_id,
    )
    line = f"{STATUS_EMOJI[status]} {line}"
    return f"{line}: {t.detail}" if t.detail and status is not Status.SENT else line


def started_lines(
    targets: Sequence[Target], ends: datetime, zone: tzinfo, lang: Language
) -> list[str]:
    head = lang.ngettext(
        "👀 I'm watching {n} recipient and will say here when it is done (at the latest {when}).",
        "👀 I'm watching {n} recipients and will say here when each is done "
        "(at the latest {when}).",
        len(targets),
    ).format(n=len(targets), when=lang.when(ends, zone))
    return [head, *(target_line(t, lang) for t in targets)]


def done_lines(targets: Sequence[Target], lang: Language) -> list[str]:
    if all(Status(t.status) is Status.SENT for t in targets):
        head = lang.gettext("Done: every recipient was delivered.")
    else:
        head = lang.gettext("Done: every recipient has reached its end, not all of them delivered.")
    return [head, *(target_line(t, lang) for t in targets)]


def expired_lines(targets: Sequence[Target], lang: Language) -> list[str]:
    head = lang.gettext(
        "I stopped watching: a day has passed since Postfix should have given up, and these "
        "are still not final. Ask /mailtrace again to see where they are."
    )
    return [head, *(target_line(t, lang) for t in targets)]


def unreachable_line(why: str, lang: Language) -> str:
    return lang.gettext(
        "I can't reach the server right now ({why}). I keep trying, less and less often, and "
        "won't say this again for this watch."
    ).format(why=why)


def cancelled_line(user: str, lang: Language) -> str:
    return lang.gettext("Stopped watching (cancelled by {user}).").format(user=user)


def limit_line(which: str, limit: int, lang: Language) -> str:
    if which == "user":
        return lang.gettext(
            "You already have {limit} watches running, the most one person may have. Cancel "
            "one, or wait until one ends."
        ).format(limit=limit)
    return lang.gettext(
        "This workspace already has {limit} watches running, the most I keep. Please try "
        "again when one has ended."
    ).format(limit=limit)


def retry_line(server: str, queue_ids: Sequence[str], lang: Language) -> str:
    return lang.gettext(
        "🔁 Asked {server} to try {queue_ids} again now (postqueue -i). I'll look again in a "
        "moment."
    ).format(server=server, queue_ids=", ".join(queue_ids))


def retry_failed_line(server: str, why: str, lang: Language) -> str:
    return lang.gettext("I couldn't ask {server} to retry: {why}").format(server=server, why=why)


def not_operator_line(lang: Language) -> str:
    return lang.gettext(
        "Sorry, only the operators listed in mailtrace's configuration may ask a server to "
        "retry now."
    )


def gone_line(lang: Language) -> str:
    return lang.gettext("This watch has already ended.")
