"""What a recipient's state means for the person asking, and who has to act.

Strategy: one sentence for the status and one for the DSN code (see `dsn`); the remote server's
own words are kept verbatim beside it (`Recipient.reason`). "Who acts" is decided from the
status and the DSN subject: an address problem is the sender's to fix, a full mailbox the
recipient's, a policy refusal the receiving side's admin (or ours when our own server refused
it).
"""

from __future__ import annotations

from parsers.dsn import describe_dsn
from parsers.failures import describe_failure
from parsers.filters import explain_policy, filter_name, filter_verdict
from parsers.models import Status

NOBODY = "nobody"
SENDER = "the sender"
RECIPIENT = "the recipient"
RECIPIENT_ADMIN = "the recipient's mail admin"
US = "us (the mail team)"

_STATUS_TEXT: dict[Status, str] = {
    Status.SENT: "Delivered",
    Status.BOUNCED: "Bounced: permanently refused, and the sender gets a bounce notice",
    Status.DEFERRED: "Deferred: a temporary failure; it is still queued and Postfix will retry",
    Status.EXPIRED: (
        "Expired: retried until the queue lifetime ran out, then returned to the sender"
    ),
    Status.REJECTED: "Rejected during the SMTP session; the sending server got the error",
    Status.DISCARDED: "Discarded: accepted, then silently dropped by policy",
    Status.HELD: "Held: parked in the hold queue until an admin releases or deletes it",
    Status.DELETED: "Deleted from the queue by an administrator",
    Status.UNKNOWN: "Unknown: the searched logs end before a final state",
}


def explain_status(status: Status, dsn: str | None, relay: str | None) -> tuple[str, str]:
    """(explanation, who has to act) for one recipient.

    The explanation is what the status and the DSN code mean; the server's own words stay in
    `reason`, shown beside it, so nothing is said twice.
    """
    parts = [_STATUS_TEXT[status]]
    if status is Status.SENT and relay:
        parts[0] = f"Delivered via {_relay_name(relay)}"
    meaning = describe_dsn(dsn)
    if meaning and status is not Status.SENT:
        parts.append(f"{dsn} means {meaning}")
    return ". ".join(parts) + ".", _who_acts(status, dsn)


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
) -> tuple[str, str]:
    """(explanation, who has to act), told with what did it: a content filter's verdict, a
    milter or before-queue filter, or a failure Postfix describes in its own fixed words."""
    text, who = explain_status(status, dsn, relay)
    policy = explain_policy(postfix_status, stage, daemon)
    meaning = describe_dsn(dsn)
    dsn_part = f" {dsn} means {meaning}." if meaning and status is not Status.SENT else ""
    if content_filter is not None:
        name = filter_name(content_filter)
        verdict = filter_verdict(reason)
        if status is Status.SENT:
            return f"Handed to {name}, which queued it anew (followed below).", NOBODY
        if verdict is not None and status is Status.DISCARDED:
            return (
                f"Stopped by {name}: its verdict was '{verdict}'; the recipient does not get it.",
                US + " (check the filter's quarantine; release it if it was legitimate)",
            )
        if status in (Status.BOUNCED, Status.REJECTED):
            return f"Refused by {name}.{dsn_part}", US + " if the mail was legitimate; else nobody"
        if status is Status.UNKNOWN:
            return (
                f"Handed to {name}; what it did next is in its own logs.",
                NOBODY + " (ask us to look at the filter's logs if it never arrived)",
            )
    if policy is not None:
        if postfix_status == "proxy-accept":
            nxt = "it was passed on (followed below)" if status is Status.SENT else ""
            return (
                f"{policy}; {nxt or 'what the filter did next is in its own logs'}.",
                NOBODY,
            )
        if status is Status.REJECTED:
            who = US + " if the mail was legitimate (our filter refused it); else nobody"
            if dsn and dsn.startswith("4."):
                who = NOBODY + " yet: the sending server retries"
            return f"{policy}; the sending server got the error.{dsn_part}", who
        return policy + ".", US + " (our policy)"
    if status in (Status.DEFERRED, Status.BOUNCED, Status.EXPIRED):
        failure = describe_failure(reason)
        if failure is not None:
            sentence, failure_who = failure
            return f"{text} {sentence}.", failure_who if status is not Status.DEFERRED else who
    return text, who


def _who_acts(status: Status, dsn: str | None) -> str:
    subject = dsn.split(".")[1] if dsn and dsn.count(".") == 2 else ""
    if status is Status.SENT:
        return NOBODY
    if status is Status.DEFERRED:
        return NOBODY + " yet: Postfix retries; " + US + " if it persists"
    if status in (Status.BOUNCED, Status.REJECTED):
        if subject == "1":
            return SENDER + " (check the address)"
        if subject == "2":
            return RECIPIENT + " (their mailbox)"
        if subject == "7" and status is Status.REJECTED:
            return US + " if the mail was legitimate (our policy refused it); else nobody"
        if subject == "7":
            return RECIPIENT_ADMIN + " (their policy), or " + US + " if it is our reputation"
        return RECIPIENT_ADMIN
    if status is Status.EXPIRED:
        return (
            US + " and " + RECIPIENT_ADMIN + " (their server refused or was unreachable too long)"
        )
    if status in (Status.HELD, Status.DISCARDED):
        return US + " (our policy)"
    if status is Status.DELETED:
        return NOBODY + " (ask the admin who deleted it)"
    return US + " (look at the server's logs or queue)"


def _relay_name(relay: str) -> str:
    """'mx.example.org[203.0.113.9]:25' -> 'mx.example.org'; 'local' stays."""
    return relay.split("[", 1)[0] if "[" in relay else f"the {relay} service"
