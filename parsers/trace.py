"""Events -> messages: group by (host, queue ID), follow each recipient to its final state.

Strategy: walk each host's events in time order (a stable sort, so lines with equal stamps keep
their file order) and feed them to one open `_Builder` per queue ID. A queue ID's life ends at
`removed`, because Postfix reuses short IDs; the next line with that ID opens a new message.
Pre-queue rejects and discards (NOQUEUE) become messages of their own with no queue ID. When
every event is in, builders are frozen into `Message` values and linked to each other (bounce
notices, re-injected copies after a content filter).

Only events of one host are ever grouped together, so how lines of different messages or hosts
interleave never changes the result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from parsers.explain import explain_recipient
from parsers.filters import filter_verdict
from parsers.links import RelayResolver, link_reinjections, resolve_local_relays
from parsers.models import (
    FINAL_STATUSES,
    STATUS_SEVERITY,
    EventKind,
    Link,
    LinkKind,
    LogEvent,
    Message,
    Recipient,
    Status,
)

__all__ = ["START_KINDS", "RelayResolver", "group_messages", "resolve_local_relays", "summarize"]

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
_ENTRY_KINDS = frozenset({EventKind.CLIENT, EventKind.PICKUP})  # how a message enters Postfix


@dataclass
class _RecipientState:
    address: str
    orig_to: str | None = None
    status: Status = Status.UNKNOWN
    postfix_status: str | None = None
    dsn: str | None = None
    relay: str | None = None
    reason: str | None = None
    attempts: int = 0
    last_attempt: datetime | None = None
    tentative: bool = False  # only a hold/discard line named it (the first recipient there)
    content_filter: str | None = None  # relay= of the after-queue filter that took or judged it
    stage: str | None = None  # SMTP stage of a reject


@dataclass
class _Builder:
    host: str
    queue_id: str | None
    events: list[LogEvent] = field(default_factory=list)
    recipients: dict[tuple[str, str | None], _RecipientState] = field(default_factory=dict)
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

    def recipient(self, address: str, orig_to: str | None = None) -> _RecipientState:
        key = (address, orig_to if orig_to != address else None)
        state = self.recipients.get(key)
        if state is None:
            state = self.recipients[key] = _RecipientState(address, key[1])
        return state

    def add(self, event: LogEvent, resolve: RelayResolver) -> None:
        self.events.append(event)
        if event.kind in START_KINDS:
            self.started = True
        if event.kind in _ENTRY_KINDS:
            self.entered = True
        handler = _HANDLERS.get(event.kind)
        if handler is not None:
            handler(self, event, resolve)


def _on_client(b: _Builder, e: LogEvent, _: RelayResolver) -> None:
    if e.client_host is not None:
        b.client = f"{e.client_host}[{e.client_ip}]"
    if e.orig_queue_id:
        b.orig_queue_id = e.orig_queue_id
        b.links.append(Link(kind=LinkKind.PREVIOUS_HOP, queue_id=e.orig_queue_id, host=b.host))


def _on_pickup(b: _Builder, e: LogEvent, _: RelayResolver) -> None:
    b.client = e.client_host
    b.sender = b.sender or e.sender


def _on_message_id(b: _Builder, e: LogEvent, _: RelayResolver) -> None:
    b.message_id = e.message_id


def _on_queued(b: _Builder, e: LogEvent, _: RelayResolver) -> None:
    b.sender = e.sender if e.sender is not None else b.sender
    b.size = e.size if e.size is not None else b.size


def _on_delivery(b: _Builder, e: LogEvent, resolve: RelayResolver) -> None:
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


def _on_expired(b: _Builder, e: LogEvent, _: RelayResolver) -> None:
    b.expired = True
    b.sender = e.sender if e.sender is not None else b.sender


def _on_reject(b: _Builder, e: LogEvent, _: RelayResolver) -> None:
    per_recipient = e.smtp_stage in ("RCPT", "VRFY") and e.recipient is not None
    if not per_recipient:
        b.whole_message = Status.REJECTED
        b.policy = e
    if e.recipient is not None:
        state = b.recipient(e.recipient)
        state.status, state.postfix_status = Status.REJECTED, e.action
        state.dsn, state.reason, state.stage = e.dsn, e.reason, e.smtp_stage
        state.attempts += 1
        state.last_attempt = e.timestamp
    b.sender = b.sender or e.sender
    if e.client_ip and b.client is None:
        b.client = f"{e.client_host or 'unknown'}[{e.client_ip}]"


def _note_policy(b: _Builder, e: LogEvent, what: str) -> None:
    """A policy action on the whole message: note it; its line names sender and a recipient.

    That recipient is tentative: if deliveries follow (after a release), they name the real
    recipients, possibly expanded from it by an alias, and it is dropped."""
    b.notes.append(f"{what}: {e.reason or e.text}")
    if e.recipient is not None:
        state = b.recipient(e.recipient)
        if state.attempts == 0 and state.status is Status.UNKNOWN:
            state.tentative = True
    b.sender = b.sender or e.sender


def _on_discard(b: _Builder, e: LogEvent, _: RelayResolver) -> None:
    b.whole_message = Status.DISCARDED
    b.policy = e
    _note_policy(b, e, "discarded by policy")


def _on_hold(b: _Builder, e: LogEvent, _: RelayResolver) -> None:
    b.held = True
    b.policy = e
    _note_policy(b, e, "placed on hold")


def _on_proxy_accept(b: _Builder, e: LogEvent, resolve: RelayResolver) -> None:
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


def _on_release(b: _Builder, e: LogEvent, _: RelayResolver) -> None:
    b.held = False
    b.notes.append("released from hold")


def _on_delete(b: _Builder, e: LogEvent, _: RelayResolver) -> None:
    b.deleted = True


def _on_notification(b: _Builder, e: LogEvent, _: RelayResolver) -> None:
    if e.new_queue_id:
        b.links.append(Link(kind=LinkKind.BOUNCE, queue_id=e.new_queue_id, host=b.host))
        b.notes.append(f"{e.notice}: {e.new_queue_id}")


def _on_header_action(b: _Builder, e: LogEvent, _: RelayResolver) -> None:
    b.notes.append(f"{e.action}: {e.reason or e.text}")


_HANDLERS: dict[EventKind, Callable[[_Builder, LogEvent, RelayResolver], None]] = {
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
_UNQUEUED_KINDS = frozenset({EventKind.REJECT, EventKind.DISCARD, EventKind.PROXY_ACCEPT})


def host_of(event: LogEvent) -> str:
    """The host a line belongs to: the configured server name, else the syslog host."""
    return event.source or event.host or "unknown"


def group_messages(
    events: Iterable[LogEvent], resolve: RelayResolver = resolve_local_relays
) -> list[Message]:
    """Group events into messages, one per (host, queue ID life), ordered by first line."""
    by_host: dict[str, list[LogEvent]] = {}
    for event in events:
        by_host.setdefault(host_of(event), []).append(event)
    built: list[_Builder] = []
    for host, host_events in by_host.items():
        built.extend(_group_host(host, host_events, resolve))
    messages = [_freeze(b) for b in built]
    messages = link_reinjections(messages)
    return _merge_repeated_refusals(sorted(messages, key=_order_key))


def _merge_repeated_refusals(messages: list[Message]) -> list[Message]:
    """One entry for the same pre-queue refusal repeated (a sender's server retrying a 4xx, or a
    spammer): same host, client, sender and the same answer to the same recipients. Its
    recipients count the attempts; the lines of every attempt are kept."""
    merged: list[Message] = []
    index: dict[tuple[object, ...], int] = {}
    for m in messages:
        if m.queue_id is not None or m.status is not Status.REJECTED:
            merged.append(m)
            continue
        key = (
            m.host,
            m.client,
            m.sender,
            m.status,
            tuple((r.address, r.status, r.dsn, r.reason) for r in m.recipients),
        )
        at = index.get(key)
        if at is None:
            index[key] = len(merged)
            merged.append(m)
            continue
        first = merged[at]
        recipients = tuple(
            r.model_copy(
                update={"attempts": r.attempts + s.attempts, "last_attempt": s.last_attempt}
            )
            for r, s in zip(first.recipients, m.recipients, strict=True)
        )
        merged[at] = first.model_copy(
            update={
                "recipients": recipients,
                "last_seen": m.last_seen,
                "lines": first.lines + m.lines,
            }
        )
    return merged


def _group_host(host: str, events: list[LogEvent], resolve: RelayResolver) -> list[_Builder]:
    ordered = sorted(enumerate(events), key=lambda pair: _time_key(pair[1], pair[0]))
    open_: dict[str, _Builder] = {}
    done: list[_Builder] = []
    clients: dict[tuple[str | None, int | None], str] = {}  # smtpd process -> its client now
    for _, event in ordered:
        process = (event.program, event.pid)
        if event.kind in (EventKind.CONNECT, EventKind.CLIENT) and event.client_ip:
            clients[process] = f"{event.client_host or 'unknown'}[{event.client_ip}]"
        if event.queue_id is None:
            if event.kind in _UNQUEUED_KINDS:  # NOQUEUE or no prefix at all: before queueing
                builder = _Builder(host, None, started=True)
                builder.add(event, resolve)
                # proxy-* lines name no client: the same smtpd process's connection does
                builder.client = builder.client or clients.get(process)
                done.append(builder)
            continue
        current = open_.get(event.queue_id)
        if current is not None and event.kind in _ENTRY_KINDS and current.entered:
            current = None  # a second client=/uid= line: Postfix reused the ID
        if current is None:
            current = open_[event.queue_id] = _Builder(host, event.queue_id)
            done.append(current)
        current.add(event, resolve)
        # A life ends at `removed`. A message rejected or discarded whole gets no `removed`:
        # its ID's next life is recognised by its client=/uid= line (above).
        if event.kind in (EventKind.REMOVED, EventKind.DELETE):
            del open_[event.queue_id]
    return done


def _time_key(event: LogEvent, index: int) -> tuple[float, int]:
    # Lines without a time keep their place relative to nothing in particular; put them first
    # rather than guess. Python's sort is stable, so equal stamps keep file order.
    stamp = event.timestamp.timestamp() if event.timestamp is not None else float("-inf")
    return stamp, index


def _order_key(message: Message) -> tuple[float, str, str]:
    stamp = message.first_seen.timestamp() if message.first_seen else float("-inf")
    return stamp, message.host, message.queue_id or ""


def _freeze(b: _Builder) -> Message:
    states = list(b.recipients.values())
    if any(not s.tentative for s in states):
        states = [
            s for s in states if not s.tentative or s.attempts or s.status is not Status.UNKNOWN
        ]
    recipients = [_final_recipient(b, state) for state in states]
    status = _headline(b, recipients)
    stamps = [e.timestamp for e in b.events if e.timestamp is not None]
    return Message(
        host=b.host,
        queue_id=b.queue_id,
        message_id=b.message_id,
        sender=b.sender,
        client=b.client,
        size=b.size,
        status=status,
        summary=summarize(status, recipients),
        first_seen=min(stamps) if stamps else None,
        last_seen=max(stamps) if stamps else None,
        started_before_logs=not b.started,
        recipients=tuple(recipients),
        links=tuple(dict.fromkeys(b.links)),
        notes=tuple(dict.fromkeys(b.notes)),
        lines=tuple(e.raw for e in b.events),
    )


def _final_recipient(b: _Builder, state: _RecipientState) -> Recipient:
    status = state.status
    postfix_status, dsn, reason, stage = (
        state.postfix_status,
        state.dsn,
        state.reason,
        state.stage,
    )
    if status not in FINAL_STATUSES:
        if b.whole_message is not None:
            status = b.whole_message
        elif b.deleted:
            status = Status.DELETED
        elif b.expired:
            status = Status.EXPIRED
        elif b.held:
            status = Status.HELD
        policy = b.policy
        if status is not state.status and policy is not None and status is not Status.DELETED:
            # the whole message's verdict is this recipient's: tell it with that line's words
            postfix_status = policy.action
            dsn, reason, stage = policy.dsn or dsn, policy.reason or reason, policy.smtp_stage
    explanation, action_by = explain_recipient(
        status,
        dsn,
        state.relay,
        postfix_status=postfix_status,
        reason=reason,
        stage=stage,
        content_filter=state.content_filter,
    )
    return Recipient(
        address=state.address,
        orig_to=state.orig_to,
        status=status,
        postfix_status=postfix_status,
        dsn=dsn,
        relay=state.relay,
        reason=reason,
        attempts=state.attempts,
        last_attempt=state.last_attempt,
        explanation=explanation,
        action_by=action_by,
        content_filter=state.content_filter,
        smtp_stage=stage,
    )


def _headline(b: _Builder, recipients: list[Recipient]) -> Status:
    if recipients:
        present = {r.status for r in recipients}
        return next(s for s in STATUS_SEVERITY if s in present)
    if b.whole_message is not None:
        return b.whole_message
    if b.deleted:
        return Status.DELETED
    if b.expired:
        return Status.EXPIRED
    if b.held:
        return Status.HELD
    return Status.UNKNOWN


def summarize(status: Status, recipients: list[Recipient]) -> str:
    """One line: '1 recipient: sent' or '3 recipients: 2 sent, 1 bounced'."""
    if not recipients:
        return f"no recipient logged; message {status.value}"
    counts: dict[Status, int] = {}
    for r in recipients:
        counts[r.status] = counts.get(r.status, 0) + 1
    noun = "recipient" if len(recipients) == 1 else "recipients"
    if len(counts) == 1:
        return f"{len(recipients)} {noun}: {status.value}"
    parts = [f"{n} {s.value}" for s in STATUS_SEVERITY for n in [counts.get(s, 0)] if n]
    return f"{len(recipients)} {noun}: " + ", ".join(parts)
