"""Events -> messages: group by (host, queue ID), follow each recipient to its final state.

Strategy: walk each host's events in time order (a stable sort, so lines with equal stamps keep
their file order) and feed them to one open `Builder` per queue ID. A queue ID's life ends at
`removed`, because Postfix reuses short IDs; the next line with that ID opens a new message.
Pre-queue rejects and discards (NOQUEUE) become messages of their own with no queue ID. When
every event is in, builders are frozen into `Message` values and linked to each other (bounce
notices, re-injected copies after a content filter).

Only events of one host are ever grouped together, so how lines of different messages or hosts
interleave never changes the result.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from parsers.builder import (
    ENTRY_KINDS,
    START_KINDS,
    UNQUEUED_KINDS,
    Builder,
    RecipientState,
)
from parsers.explain import explain_recipient
from parsers.i18n import ENGLISH, Translator
from parsers.links import RelayResolver, link_reinjections, resolve_local_relays
from parsers.models import (
    FINAL_STATUSES,
    STATUS_SEVERITY,
    EventKind,
    LogEvent,
    Message,
    Recipient,
    Status,
)

__all__ = ["START_KINDS", "RelayResolver", "group_messages", "resolve_local_relays", "summarize"]


def host_of(event: LogEvent) -> str:
    """The host a line belongs to: the configured server name, else the syslog host."""
    return event.source or event.host or "unknown"


def group_messages(
    events: Iterable[LogEvent],
    resolve: RelayResolver = resolve_local_relays,
    tr: Translator = ENGLISH,
) -> list[Message]:
    """Group events into messages, one per (host, queue ID life), ordered by first line; the
    explanations are worded with `tr`."""
    with _no_cycle_collection():
        by_host: dict[str, list[LogEvent]] = {}
        for event in events:
            by_host.setdefault(host_of(event), []).append(event)
        built: list[Builder] = []
        for host, host_events in by_host.items():
            built.extend(_group_host(host, host_events, resolve))
        messages = [_freeze(b, tr) for b in built]
        messages = link_reinjections(messages)
        return _merge_repeated_refusals(sorted(messages, key=_order_key))


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Grouping builds several objects per line and no reference cycles; the cyclic collector
    would walk every event already read, again and again, for nothing (a third of the grouping
    time on a large answer). Reference counting still frees everything as usual."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


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


def _group_host(host: str, events: list[LogEvent], resolve: RelayResolver) -> list[Builder]:
    ordered = sorted(enumerate(events), key=lambda pair: _time_key(pair[1], pair[0]))
    open_: dict[str, Builder] = {}
    done: list[Builder] = []
    clients: dict[tuple[str | None, int | None], str] = {}  # smtpd process -> its client now
    screens: dict[tuple[str | None, int | None, str | None], list[str]] = {}  # postscreen
    for _, event in ordered:
        process = (event.program, event.pid)
        if event.kind is EventKind.SCREEN and event.action not in ("CONNECT", "DISCONNECT"):
            screens.setdefault((*process, event.client_ip), []).append(event.reason or "")
        if event.kind in (EventKind.CONNECT, EventKind.CLIENT) and event.client_ip:
            clients[process] = f"{event.client_host or 'unknown'}[{event.client_ip}]"
        if event.queue_id is None:
            if event.kind in UNQUEUED_KINDS:  # NOQUEUE or no prefix at all: before queueing
                builder = Builder(host, None, started=True)
                builder.add(event, resolve)
                # proxy-* lines name no client: the same smtpd process's connection does
                builder.client = builder.client or clients.get(process)
                # postscreen's verdicts on this client say why it refused
                builder.notes.extend(screens.pop((*process, event.client_ip), []))
                done.append(builder)
            continue
        current = open_.get(event.queue_id)
        if current is not None and event.kind in ENTRY_KINDS and current.entered:
            current = None  # a second client=/uid= line: Postfix reused the ID
        if current is None:
            current = open_[event.queue_id] = Builder(host, event.queue_id)
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


def _freeze(b: Builder, tr: Translator) -> Message:
    states = list(b.recipients.values())
    if any(not s.tentative for s in states):
        states = [
            s for s in states if not s.tentative or s.attempts or s.status is not Status.UNKNOWN
        ]
    recipients = [_final_recipient(b, state, tr) for state in states]
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
        summary=summarize(status, recipients, tr),
        first_seen=min(stamps) if stamps else None,
        last_seen=max(stamps) if stamps else None,
        started_before_logs=not b.started,
        recipients=tuple(recipients),
        links=tuple(dict.fromkeys(b.links)),
        notes=tuple(dict.fromkeys(b.notes)),
        lines=tuple(e.raw for e in b.events),
    )


def _final_recipient(b: Builder, state: RecipientState, tr: Translator) -> Recipient:
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
        daemon=state.daemon,
        tr=tr,
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
        handed_to=state.handed_to,
    )


def _headline(b: Builder, recipients: list[Recipient]) -> Status:
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


def summarize(status: Status, recipients: list[Recipient], tr: Translator = ENGLISH) -> str:
    """One line: '1 recipient: sent' or '3 recipients: 2 sent, 1 bounced' (Postfix's status
    words stay as they are: they are what one greps for)."""
    if not recipients:
        return tr.gettext("no recipient logged; message {status}").format(status=status.value)
    counts: dict[Status, int] = {}
    for r in recipients:
        counts[r.status] = counts.get(r.status, 0) + 1
    head = tr.ngettext("{n} recipient", "{n} recipients", len(recipients)).format(n=len(recipients))
    if len(counts) == 1:
        return f"{head}: {status.value}"
    parts = [f"{n} {s.value}" for s in STATUS_SEVERITY for n in [counts.get(s, 0)] if n]
    return f"{head}: " + ", ".join(parts)
