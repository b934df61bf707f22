"""What a recipient's state means for the person asking, and who has to act.

Strategy: one sentence for the status and one for the DSN code (see `dsn`); the remote server's
own words are kept verbatim beside it (`Recipient.reason`). "Who acts" is decided from the
status and the DSN subject: an address problem is the sender's to fix, a full mailbox the
recipient's, a policy refusal the receiving side's admin (or ours when our own server refused
it). Every sentence is a whole msgid (see `parsers.i18n`), so a translation can reorder it.
"""

from __future__ import annotations

from parsers.dsn import describe_dsn
from parsers.failures import describe_failure
from parsers.filters import explain_policy, filter_name, filter_verdict
from parsers.i18n import ENGLISH, N_, Translator
from parsers.models import Status

_STATUS_TEXT: dict[Status, str] = {
    Status.SENT: N_("Delivered."),
    Status.BOUNCED: N_("Bounced: permanently refused, and the sender gets a bounce notice."),
    Status.DEFERRED: N_(
        "Deferred: a temporary failure; it is still queued and Postfix will retry."
    ),
    Status.EXPIRED: N_(
        "Expired: retried until the queue lifetime ran out, then returned to the sender."
    ),
    Status.REJECTED: N_("Rejected during the SMTP session; the sending server got the error."),
    Status.DISCARDED: N_("Discarded: accepted, then silently dropped by policy."),
    Status.HELD: N_("Held: parked in the hold queue until an admin releases or deletes it."),
    Status.DELETED: N_("Deleted from the queue by an administrator."),
    Status.UNKNOWN: N_("Unknown: the searched logs end before a final state."),
}


def explain_status(
    status: Status, dsn: str | None, relay: str | None, tr: Translator = ENGLISH
) -> tuple[str, str]:
    """(explanation, who has to act) for one recipient.

    The explanation is what the status and the DSN code mean; the server's own words stay in
    `reason`, shown beside it, so nothing is said twice.
    """
    _ = tr.gettext
    text = _(_STATUS_TEXT[status])
    if status is Status.SENT and relay:
        text = _relay_words(relay, tr)
    text += _dsn_part(status, dsn, tr)
    return text, _who_acts(status, dsn, tr)


def _dsn_part(status: Status, dsn: str | None, tr: Translator) -> str:
    """' 5.1.1 means the recipient's mailbox does not exist.' (nothing for a delivery)."""
    meaning = describe_dsn(dsn, tr)
    if not meaning or status is Status.SENT:
        return ""
    return " " + tr.gettext("{code} means {meaning}.").format(code=dsn, meaning=meaning)


def explain_recipient(
    status: Status,
    dsn: str | None,
    relay: str | None,
    *,
    postfix_status: str | None = None,
    reason: str | None = None,
    stage: str | None = None,
    content_filter: str | None = None,
    daemon: str | None = None,
    tr: Translator = ENGLISH,
) -> tuple[str, str]:
    """(explanation, who has to act), told with what did it: a content filter's verdict, a
    milter or before-queue filter, or a failure Postfix describes in its own fixed words."""
    _ = tr.gettext
    text, who = explain_status(status, dsn, relay, tr)
    policy = explain_policy(postfix_status, stage, daemon, tr)
    dsn_part = _dsn_part(status, dsn, tr)
    if content_filter is not None:
        name = filter_name(content_filter, tr)
        verdict = filter_verdict(reason)
        if status is Status.SENT:
            return _("Handed to {filter}, which queued it anew (followed below).").format(
                filter=name
            ), _("nobody")
        if verdict is not None and status is Status.DISCARDED:
            return (
                _(
                    "Stopped by {filter}: its verdict was '{verdict}'; the recipient does not "
                    "get it."
                ).format(filter=name, verdict=verdict),
                _(
                    "us (the mail team): check the filter's quarantine; release it if it was "
                    "legitimate"
                ),
            )
        if status in (Status.BOUNCED, Status.REJECTED):
            return _("Refused by {filter}.").format(filter=name) + dsn_part, _(
                "us (the mail team) if the mail was legitimate; else nobody"
            )
        if status is Status.UNKNOWN:
            return (
                _("Handed to {filter}; what it did next is in its own logs.").format(filter=name),
                _("nobody (ask us to look at the filter's logs if it never arrived)"),
            )
    if policy is not None:
        if postfix_status == "proxy-accept":
            if status is Status.SENT:
                return _("{policy}; it was passed on (followed below).").format(policy=policy), _(
                    "nobody"
                )
            return _("{policy}; what the filter did next is in its own logs.").format(
                policy=policy
            ), _("nobody")
        if status is Status.REJECTED:
            who = _(
                "us (the mail team) if the mail was legitimate (our filter refused it); else nobody"
            )
            if dsn and dsn.startswith("4."):
                who = _("nobody yet: the sending server retries")
            return _("{policy}; the sending server got the error.").format(
                policy=policy
            ) + dsn_part, who
        return _("{policy}.").format(policy=policy), _("us (the mail team): our policy")
    if status in (Status.DEFERRED, Status.BOUNCED, Status.EXPIRED):
        failure = describe_failure(reason, tr)
        if failure is not None:
            sentence, failure_who = failure
            return f"{text} {sentence}", failure_who if status is not Status.DEFERRED else who
    return text, who


def _who_acts(status: Status, dsn: str | None, tr: Translator) -> str:
    _ = tr.gettext
    subject = dsn.split(".")[1] if dsn and dsn.count(".") == 2 else ""
    if status is Status.SENT:
        return _("nobody")
    if status is Status.DEFERRED:
        return _("nobody yet: Postfix retries; us (the mail team) if it persists")
    if status in (Status.BOUNCED, Status.REJECTED):
        if subject == "1":
            return _("the sender: check the address")
        if subject == "2":
            return _("the recipient: their mailbox")
        if subject == "7" and status is Status.REJECTED:
            return _(
                "us (the mail team) if the mail was legitimate (our policy refused it); else nobody"
            )
        if subject == "7":
            return _(
                "the recipient's mail admin (their policy), or us (the mail team) if it is "
                "our reputation"
            )
        return _("the recipient's mail admin")
    if status is Status.EXPIRED:
        return _(
            "us (the mail team) and the recipient's mail admin (their server refused or was "
            "unreachable too long)"
        )
    if status in (Status.HELD, Status.DISCARDED):
        return _("us (the mail team): our policy")
    if status is Status.DELETED:
        return _("nobody (ask the admin who deleted it)")
    return _("us (the mail team): look at the server's logs or queue")


def _relay_words(relay: str, tr: Translator) -> str:
    """'mx.example.org[203.0.113.9]:25' -> 'Delivered via mx.example.org.'; 'local' ->
    'Delivered via the local service.'"""
    if "[" in relay:
        return tr.gettext("Delivered via {host}.").format(host=relay.split("[", 1)[0])
    return tr.gettext("Delivered via the {service} service.").format(service=relay)
