"""One queue ID's life, line by line: the builder each event of a message is fed to.

Strategy: a `Builder` holds what the lines of one (host, queue ID) life said so far; each event
kind has a small handler that updates it (a delivery sets its recipient's state, a reject or
discard the whole message's, a content filter's verdict its recipient's final outcome). The
trace (see `trace`) decides which builder an event goes to and freezes builders into messages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from parsers.filters import filter_verdict
from parsers.links import RelayResolver
from parsers.models import EventKind, Link, LinkKind, LogEvent, Status

_DELIVERY_STATUS = {
    "sent": Status.SENT,
    "bounced": Status.BOUNCED,
    "deferred": Status.DEFERRED,
    "expired": Status.EXPIRED,
    "SOFTBOUNCE": Status.DEFERRED,  # soft_bounce=yes: a bounce turned into a deferral
}
# The lines a queue ID's life starts with: smtpd's client=, pickup's uid=, or cleanup's
# message-id= (the first line of a bounce notice, which neither smtpd nor pickup sees).
START_KINDS = frozenset({EventKind.CLIENT, EventKind.PICKUP, EventKind.MESSAGE_ID})
ENTRY_KINDS = frozenset({EventKind.CLIENT, EventKind.PICKUP})  # how a message enters Postfix


@dataclass
class RecipientState:
    address: str
    orig_to: str | None = None
    status: Status = Status.UNKNOWN
    postfix_status: str | None = None
    dsn: str | None = None
    relay: str | None = None
    reason: str | None = None
    attempts: int = 0
    last_attempt: datetime | None = None
    handed_to: str | None = None  # queue ID its latest delivery created
    tentative: bool = False  # only a hold/discard line named it (the first recipient there)
    content_filter: str | None = None  # relay= of the after-queue filter that took or judged it
    stage: str | None = None  # SMTP stage of a reject
    daemon: str | None = None  # the daemon that refused it (smtpd, cleanup, postscreen)


@dataclass
class Builder:
    host: str
    queue_id: str | None
    events: list[LogEvent] = field(default_factory=list)
    recipients: dict[tuple[str, str | None], RecipientState] = field(default_factory=dict)
    links: list[Link] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    message_id: str | None = None
    sender: str | None = None
    client: str | None = None
    size: int | None = None
    started: bool = False
    entered: bool = False  # its client=/uid= line was seen
    held: bool = False
    deleted: bool = False
    expired: bool = False
    whole_message: Status | None = None  # a reject/discard of the whole message
    policy: LogEvent | None = None  # the line that rejected, discarded or held it whole
    orig_queue_id: str | None = None

    def recipient(self, address: str, orig_to: str | None = None) -> RecipientState:
        key = (address, orig_to if orig_to != address else None)
        state = self.recipients.get(key)
        if state is None:
            state = self.recipients[key] = RecipientState(address, key[1])
        return state

    def add(self, event: LogEvent, resolve: RelayResolver) -> None:
        self.events.append(event)
        if event.kind in START_KINDS:
            self.started = True
        if event.kind in ENTRY_KINDS:
            self.entered = True
        handler = _HANDLERS.get(event.kind)
        if handler is not None:
            handler(self, event, resolve)


def _on_client(b: Builder, e: LogEvent, _: RelayResolver) -> None:
    if e.client_host is not None:
        b.client = f"{e.client_host}[{e.client_ip}]"
    if e.orig_queue_id:
        b.orig_queue_id = e.orig_queue_id
        b.links.append(Link(kind=LinkKind.PREVIOUS_HOP, queue_id=e.orig_queue_id, host=b.host))


def _on_pickup(b: Builder, e: LogEvent, _: RelayResolver) -> None:
    b.client = e.client_host
    b.sender = b.sender or e.sender


def _on_message_id(b: Builder, e: LogEvent, _: RelayResolver) -> None:
    b.message_id = e.message_id


def _on_queued(b: Builder, e: LogEvent, _: RelayResolver) -> None:
    b.sender = e.sender if e.sender is not None else b.sender
    b.size = e.size if e.size is not None else b.size


def _on_delivery(b: Builder, e: LogEvent, resolve: RelayResolver) -> None:
    if e.recipient is None:
        return
    state = b.recipient(e.recipient, e.orig_to)
    status = _DELIVERY_STATUS.get(e.status or "")
    if status is None:  # address verification probes ("deliverable") are not deliveries
        b.notes.append(f"{e.status}: {e.recipient} ({e.reason or ''})")
        return
    if status is Status.SENT and e.daemon == "discard":
        status = Status.DISCARDED
    state.status, state.postfix_status = status, e.status
    state.dsn, state.relay, state.reason = e.dsn, e.relay, e.reason
    state.attempts += 1
    state.last_attempt = e.timestamp
    state.handed_to = e.new_queue_id
    forwarded = bool(e.reason and "forwarded as" in e.reason)
    target = resolve(e.relay, b.host) if e.relay and not forwarded else None
    # A loopback relay on this host that queued a copy, or answered with a verdict, is an
    # after-queue content filter: "sent" only means the filter took it.
    verdict = filter_verdict(e.reason)
    if target == b.host and (e.new_queue_id or verdict or _filter_refusal(e)):
        state.content_filter = e.relay
        if status is Status.SENT and verdict is not None:
            state.status = Status.DISCARDED
    if e.new_queue_id and e.reason:
        if forwarded:
            b.links.append(Link(kind=LinkKind.FORWARDED, queue_id=e.new_queue_id, host=b.host))
        else:
            link = Link(kind=LinkKind.NEXT_HOP, queue_id=e.new_queue_id, host=target, relay=e.relay)
            b.links.append(link)


def _filter_refusal(e: LogEvent) -> bool:
    """A content filter's refusal: amavisd-new says "554 5.7.0 Reject, id=... - spam"."""
    reason = (e.reason or "").lower()
    return e.status == "bounced" and any(w in reason for w in ("spam", "virus", "banned", "id="))


def _on_expired(b: Builder, e: LogEvent, _: RelayResolver) -> None:
    b.expired = True
    b.sender = e.sender if e.sender is not None else b.sender


def _on_reject(b: Builder, e: LogEvent, _: RelayResolver) -> None:
    per_recipient = e.smtp_stage in ("RCPT", "VRFY") and e.recipient is not None
    if not per_recipient:
        b.whole_message = Status.REJECTED
        b.policy = e
    if e.recipient is not None:
        state = b.recipient(e.recipient)
        state.status, state.postfix_status = Status.REJECTED, e.action
        state.dsn, state.reason, state.stage = e.dsn, e.reason, e.smtp_stage
        state.daemon = e.daemon
        state.attempts += 1
        state.last_attempt = e.timestamp
    b.sender = b.sender or e.sender
    if e.client_ip and b.client is None:
        b.client = f"{e.client_host or 'unknown'}[{e.client_ip}]"


def _note_policy(b: Builder, e: LogEvent, what: str) -> None:
    """A policy action on the whole message: note it; its line names sender and a recipient.

    That recipient is tentative: if deliveries follow (after a release), they name the real
    recipients, possibly expanded from it by an alias, and it is dropped."""
    b.notes.append(f"{what}: {e.reason or e.text}")
    if e.recipient is not None:
        state = b.recipient(e.recipient)
        if state.attempts == 0 and state.status is Status.UNKNOWN:
            state.tentative = True
    b.sender = b.sender or e.sender


def _on_discard(b: Builder, e: LogEvent, _: RelayResolver) -> None:
    b.whole_message = Status.DISCARDED
    b.policy = e
    _note_policy(b, e, "discarded by policy")


def _on_hold(b: Builder, e: LogEvent, _: RelayResolver) -> None:
    b.held = True
    b.policy = e
    _note_policy(b, e, "placed on hold")


def _on_proxy_accept(b: Builder, e: LogEvent, resolve: RelayResolver) -> None:
    """A before-queue filter took the mail; "queued as X" names the copy the filter handed on."""
    if e.recipient is not None:
        state = b.recipient(e.recipient)
        state.status = Status.SENT if e.new_queue_id else Status.UNKNOWN
        state.postfix_status, state.reason, state.stage = e.action, e.reason, e.smtp_stage
        state.dsn = e.dsn
        state.attempts += 1
        state.last_attempt = e.timestamp
    b.sender = b.sender or e.sender
    b.policy = e
    if e.new_queue_id:
        b.links.append(Link(kind=LinkKind.NEXT_HOP, queue_id=e.new_queue_id, host=b.host))


def _on_release(b: Builder, e: LogEvent, _: RelayResolver) -> None:
    b.held = False
    b.notes.append("released from hold")


def _on_delete(b: Builder, e: LogEvent, _: RelayResolver) -> None:
    b.deleted = True


def _on_notification(b: Builder, e: LogEvent, _: RelayResolver) -> None:
    if e.new_queue_id:
        link = Link(kind=LinkKind.BOUNCE, queue_id=e.new_queue_id, host=b.host, notice=e.notice)
        b.links.append(link)
        b.notes.append(f"{e.notice}: {e.new_queue_id}")


def _on_header_action(b: Builder, e: LogEvent, _: RelayResolver) -> None:
    b.notes.append(f"{e.action}: {e.reason or e.text}")


_HANDLERS: dict[EventKind, Callable[[Builder, LogEvent, RelayResolver], None]] = {
    EventKind.CLIENT: _on_client,
    EventKind.PICKUP: _on_pickup,
    EventKind.MESSAGE_ID: _on_message_id,
    EventKind.QUEUED: _on_queued,
    EventKind.DELIVERY: _on_delivery,
    EventKind.EXPIRED: _on_expired,
    EventKind.REJECT: _on_reject,
    EventKind.DISCARD: _on_discard,
    EventKind.HOLD: _on_hold,
    EventKind.RELEASE: _on_release,
    EventKind.DELETE: _on_delete,
    EventKind.NOTIFICATION: _on_notification,
    EventKind.HEADER_ACTION: _on_header_action,
    EventKind.PROXY_ACCEPT: _on_proxy_accept,
}
# Lines with no queue ID that still make a message of their own: the mail got no queue file.
UNQUEUED_KINDS = frozenset({EventKind.REJECT, EventKind.DISCARD, EventKind.PROXY_ACCEPT})
