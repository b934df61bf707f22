"""Content filters, before and after the queue, and milters: what their verdicts mean.

Strategy: Postfix logs a filter's verdict in Postfix's own vocabulary, which hides it. An
after-queue filter (`content_filter`, amavisd-new style) is reached by a delivery to a loopback
SMTP/LMTP port: `status=sent` then only means "the filter took it". The copy it re-injects is a
new queue ID on the same host ("queued as NEWID", `orig_queue_id=`); a reply that carries its
verdict instead ("250 2.7.0 BLOCKED", "Ok, discarded", "quarantined", spam, virus) is the end of
the road. A before-queue filter (`smtpd_proxy_filter`) answers inside smtpd's session:
`proxy-reject` refuses at the door, `proxy-accept` takes the mail. Milters act in smtpd or
cleanup (`milter-reject`, `milter-discard`, `milter-hold`). Each gets its own words here.
"""

from __future__ import annotations

import re

from parsers.i18n import ENGLISH, Translator
from parsers.keywords import fold, mentions_any

# Words of a filter that kept the mail from its recipient although the SMTP reply was 2xx:
# "250 2.7.0 Ok, discarded, id=31619-02 - spam", "250 2.7.0 BLOCKED (…)", "2.7.0 quarantined"
_VERDICT = re.compile(
    r"\b(?P<word>blocked|discarded|quarantined?|spam(?:my)?|virus|infected|banned|bad-header)\b",
    re.IGNORECASE,
)
_VERDICT_WORDS = (
    "blocked",
    "discarded",
    "quarantine",
    "spam",
    "virus",
    "infected",
    "banned",
    "bad-header",
)


def filter_verdict(reply: str | None) -> str | None:
    """The filter's verdict word in a 2xx reply ("blocked", "spam", ...), or None when the reply
    reads as a plain acceptance (or names a new queue ID: the filter passed the mail on)."""
    if not reply or "queued as" in reply:
        return None
    if not mentions_any(reply, _VERDICT_WORDS):  # most replies have none of the words
        return None
    match = _VERDICT.search(reply)
    if match is None:
        return None
    word = fold(match["word"])  # "VİRUS" is the verdict "virus"
    return {"quarantine": "quarantined", "spammy": "spam"}.get(word, word)


def filter_name(relay: str | None, tr: Translator = ENGLISH) -> str:
    """'127.0.0.1[127.0.0.1]:10024' -> 'the content filter at 127.0.0.1:10024'."""
    if not relay:
        return tr.gettext("the content filter")
    host, _, rest = relay.partition("[")
    ip, _, port = rest.partition("]")
    where = (ip or host) + port
    return tr.gettext("the content filter at {where}").format(where=where)


def explain_policy(
    action: str | None, stage: str | None, daemon: str | None = None, tr: Translator = ENGLISH
) -> str | None:
    """Plain words for a policy action of a milter, a before-queue filter or postscreen; the
    SMTP stage (RCPT, END-OF-MESSAGE) is Postfix's word and stays."""
    _ = tr.gettext
    if daemon == "postscreen" and action == "reject":
        return _(
            "Refused at the door by postscreen, our first line of defence, before smtpd saw it"
        )
    if action == "proxy-accept":
        return _("Accepted by the before-queue content filter")
    words = {
        "proxy-reject": (
            _("Rejected at the door by the before-queue content filter"),
            _("Rejected at the door by the before-queue content filter (at {stage})"),
        ),
        "milter-reject": (
            _("Rejected during the SMTP session by a milter"),
            _("Rejected during the SMTP session by a milter (at {stage})"),
        ),
        "milter-discard": (
            _("Discarded by a milter: accepted, then silently dropped"),
            _("Discarded by a milter (at {stage}): accepted, then silently dropped"),
        ),
        "milter-hold": (
            _("Held by a milter: parked in the hold queue until an admin releases it"),
            _("Held by a milter (at {stage}): parked in the hold queue until an admin releases it"),
        ),
    }.get(action or "")
    if words is None:
        return None
    plain, staged = words
    return staged.format(stage=stage) if stage else plain
