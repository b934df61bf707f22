"""What a recipient's state means for the person asking, and who has to act.

Strategy: one sentence for the status and one for the DSN code (see `dsn`); the remote server's
own words are kept verbatim beside it (`Recipient.reason`). "Who acts" is decided from the
status and the DSN subject: an address problem is the sender's to fix, a full mailbox the
recipient's, a policy refusal the receiving side's admin (or ours when our own server refused
it).
"""

from __future__ import annotations

from parsers.dsn import describe_dsn
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
