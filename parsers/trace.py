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

from parsers.explain import explain_status
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

# Where "status=sent (... queued as NEWID)" hands the message on to: given the relay= text and
# the host it was logged on, the configured server that has NEWID, or None when not ours.
RelayResolver = Callable[[str, str], str | None]

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
_LOCAL_RELAYS = ("127.", "[127.", "localhost", "::1", "[::1]", "[ipv6:::1]")


def resolve_local_relays(relay: str, host: str) -> str | None:
    """The default resolver: a relay on loopback (a content filter) is the same host."""
    name = relay.lower()
    if "[" in name:
        inner = name.split("[", 1)[1].split("]", 1)[0]
        if inner.startswith(("127.", "::1", "ipv6:::1")) or name.startswith("localhost"):
            return host
        return None
    return host if name.startswith(_LOCAL_RELAYS) else None


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
    handed_to: str | None = None
    tentative: bool = False  # only a hold/discard line named it (the first recipient there)


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
    state.handed_to = e.new_queue_id
    if e.new_queue_id and e.reason:
        if "forwarded as" in e.reason:
            b.links.append(Link(kind=LinkKind.FORWARDED, queue_id=e.new_queue_id, host=b.host))
        else:
            target = resolve(e.relay or "", b.host) if e.relay else None
            link = Link(kind=LinkKind.NEXT_HOP, queue_id=e.new_queue_id, host=target, relay=e.relay)
            b.links.append(link)


def _on_expired(b: _Builder, e: LogEvent, _: RelayResolver) -> None:
    b.expired = True
    b.sender = e.sender if e.sender is not None else b.sender


def _on_reject(b: _Builder, e: LogEvent, _: RelayResolver) -> None:
    per_recipient = e.smtp_stage in ("RCPT", "VRFY") and e.recipient is not None
    if not per_recipient:
        b.whole_message = Status.REJECTED
    if e.recipient is not None:
        state = b.recipient(e.recipient)
        state.status, state.postfix_status = Status.REJECTED, e.action
        state.dsn, state.reason = e.dsn, e.reason
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
    _note_policy(b, e, "discarded by policy")


def _on_hold(b: _Builder, e: LogEvent, _: RelayResolver) -> None:
    b.held = True
    _note_policy(b, e, "placed on hold")


def _on_release(b: _Builder, e: LogEvent, _: RelayResolver) -> None:
    b.held = False
    b.notes.append("released from hold")


def _on_delete(b: _Builder, e: LogEvent, _: RelayResolver) -> None:
    b.deleted = True


def _on_notification(b: _Builder, e: LogEvent, _: RelayResolver) -> None:
    if e.new_queue_id:
        link = Link(kind=LinkKind.BOUNCE, queue_id=e.new_queue_id, host=b.host, notice=e.notice)
        b.links.append(link)
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
}


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
    messages = _link_reinjections(messages)
    return _merge_repeated_refusals(sorted(messages, key=_order_key))


def _merge_repeated_refusals(messages: list[Message]) -> list[Message]:
    """One entry for the same pre-queue refusal repeated (a sender's server retrying a 4xx, or a
    spammer): same host, client, sender and the same answer to the same recipients. Its
    recipients count the attempts; the lines of every attempt are kept."""
    merged: list[Message] = []
    index: dict[tuple[object, ...], int] = {}
    for m in messages:
        if m.queue_id is not None:
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
    for _, event in ordered:
        if event.queue_id is None:
            if event.kind in (EventKind.REJECT, EventKind.DISCARD):  # NOQUEUE: before queueing
                builder = _Builder(host, None, started=True)
                builder.add(event, resolve)
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
    if status not in FINAL_STATUSES:
        if b.whole_message is not None:
            status = b.whole_message
        elif b.deleted:
            status = Status.DELETED
        elif b.expired:
            status = Status.EXPIRED
        elif b.held:
            status = Status.HELD
    explanation, action_by = explain_status(status, state.dsn, state.relay)
    return Recipient(
        address=state.address,
        orig_to=state.orig_to,
        status=status,
        postfix_status=state.postfix_status,
        dsn=state.dsn,
        relay=state.relay,
        reason=state.reason,
        attempts=state.attempts,
        last_attempt=state.last_attempt,
        explanation=explanation,
        action_by=action_by,
        handed_to=state.handed_to,
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


def _link_reinjections(messages: list[Message]) -> list[Message]:
    """Give each original the REINJECTED link to its copy (found via orig_queue_id)."""
    extra: dict[tuple[str, str], list[Link]] = {}
    for m in messages:
        for link in m.links:
            if link.kind is LinkKind.PREVIOUS_HOP and m.queue_id is not None:
                back = Link(kind=LinkKind.REINJECTED, queue_id=m.queue_id, host=m.host)
                extra.setdefault((m.host, link.queue_id), []).append(back)
    if not extra:
        return messages
    out = []
    for m in messages:
        more = extra.get((m.host, m.queue_id or ""))
        if more:
            m = m.model_copy(update={"links": tuple(dict.fromkeys((*m.links, *more)))})
        out.append(m)
    return out
