"""Value types of the pure core: log events in, traced messages out.

Strategy: one flat, frozen event value carries every field any Postfix line can give (most are
None for a given line), because grouping and rendering only ever need "the field, if the line had
it". Messages and recipients are the grouped result; they are frozen too, so a trace is a value
that renders the same way everywhere (terminal, JSON, Slack).

A query can read a million lines, so `LogEvent` is a slotted dataclass, not a pydantic model:
the parser already gives every field its type, and validating 33 fields per line cost more than
reading the line (see `event_value`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TypeVar, dataclass_transform

from pydantic import BaseModel, ConfigDict, Field


class Status(StrEnum):
    """Per-recipient outcome, the vocabulary of DESIGN.md."""

    SENT = "sent"
    BOUNCED = "bounced"
    DEFERRED = "deferred"
    EXPIRED = "expired"
    REJECTED = "rejected"
    DISCARDED = "discarded"
    HELD = "held"
    DELETED = "deleted"
    UNKNOWN = "unknown"


# Worst first: a message's headline is the worst state any recipient is in.
STATUS_SEVERITY: tuple[Status, ...] = (
    Status.BOUNCED,
    Status.EXPIRED,
    Status.REJECTED,
    Status.DEFERRED,
    Status.HELD,
    Status.DELETED,
    Status.DISCARDED,
    Status.UNKNOWN,
    Status.SENT,
)

FINAL_STATUSES = frozenset(
    {
        Status.SENT,
        Status.BOUNCED,
        Status.EXPIRED,
        Status.REJECTED,
        Status.DISCARDED,
        Status.DELETED,
    }
)


class EventKind(StrEnum):
    """What a log line says, as far as tracing cares."""

    CONNECT = "connect"  # smtpd: connect from host[ip]
    DISCONNECT = "disconnect"  # smtpd: disconnect from host[ip] ...
    CLIENT = "client"  # smtpd: QID: client=host[ip]
    PICKUP = "pickup"  # pickup: QID: uid=0 from=<a>
    MESSAGE_ID = "message_id"  # cleanup: QID: message-id=<x>
    QUEUED = "queued"  # qmgr: QID: from=<a>, size=N, nrcpt=N (queue active)
    DELIVERY = "delivery"  # smtp/local/virtual/...: QID: to=<a>, relay=..., status=...
    EXPIRED = "expired"  # qmgr: QID: from=<a>, status=expired, returned to sender
    REMOVED = "removed"  # qmgr / postsuper: QID: removed
    REJECT = "reject"  # smtpd/cleanup: (QID|NOQUEUE): reject|milter-reject: ...
    DISCARD = "discard"  # smtpd/cleanup: QID: discard: ...
    HOLD = "hold"  # cleanup: QID: hold: ... / postsuper: placed on hold
    RELEASE = "release"  # postsuper: QID: released from hold
    REQUEUE = "requeue"  # postsuper: QID: requeued
    DELETE = "delete"  # postsuper: QID: removed
    HEADER_ACTION = "header_action"  # cleanup: QID: warning|redirect|prepend|info|filter: ...
    NOTIFICATION = "notification"  # bounce: QID: sender non-delivery notification: NEWID
    PROXY_ACCEPT = "proxy_accept"  # smtpd: [NOQUEUE: ]proxy-accept: END-OF-MESSAGE: 250 ...
    SCREEN = "screen"  # postscreen: CONNECT/PASS/PREGREET/DNSBL/HANGUP ... from [ip]:port
    SMTP_INFO = "smtp_info"  # smtp: QID: host x[ip] said: ... / lost connection ...
    OTHER = "other"  # a Postfix line this parser has no reader for (kept raw)
    UNPARSED = "unparsed"  # not even the syslog envelope could be read


_T = TypeVar("_T")


@dataclass_transform(frozen_default=True)
def event_value(cls: type[_T]) -> type[_T]:
    """A value type for one per log line: frozen for the type checker (assigning a field is a
    type error; `dataclasses.replace` makes a changed copy), slotted and hashable at run time.
    A runtime frozen dataclass sets each field through `object.__setattr__`, which for 33
    fields costs more than parsing the line, so the runtime guard is left out."""
    return dataclass(slots=True, unsafe_hash=True)(cls)


@event_value
class LogEvent:
    """One log line, read. Every field but `raw` and `kind` is optional."""

    raw: str
    kind: EventKind
    source: str | None = None  # configured server name the line came from
    path: str | None = None  # file it was read from
    offset: int | None = None  # byte offset of the line in that file, when known
    timestamp: datetime | None = None  # timezone-aware, always
    host: str | None = None  # syslog HOSTNAME field
    program: str | None = None  # syslog tag, e.g. postfix/submission/smtpd
    daemon: str | None = None  # after the last '/', e.g. smtpd
    pid: int | None = None
    queue_id: str | None = None  # None for NOQUEUE and connection-level lines
    text: str = ""  # the message part after "QID: " (or after the tag)
    level: str | None = None  # warning/error/fatal/panic/info prefixes
    client_host: str | None = None
    client_ip: str | None = None
    sender: str | None = None
    recipient: str | None = None
    orig_to: str | None = None
    relay: str | None = None
    delay: float | None = None
    delays: str | None = None
    dsn: str | None = None
    status: str | None = None  # Postfix's own word: sent/bounced/deferred/expired/...
    reason: str | None = None  # text in parentheses after status=, or the reject text
    reply_code: int | None = None
    message_id: str | None = None
    size: int | None = None
    nrcpt: int | None = None
    action: str | None = None  # reject/milter-reject/hold/discard/redirect/warning/...
    smtp_stage: str | None = None  # RCPT, END-OF-MESSAGE, ...
    new_queue_id: str | None = None  # queued as / forwarded as / notification ID
    orig_queue_id: str | None = None  # content-filter re-injection
    notice: str | None = None  # "sender non-delivery notification" etc.


class LinkKind(StrEnum):
    NEXT_HOP = "next_hop"  # delivered to another server (or content filter) that queued it anew
    FORWARDED = "forwarded"  # alias/.forward expansion on the same server
    BOUNCE = "bounce"  # the notification this message caused
    REINJECTED = "reinjected"  # the copy re-injected after a content filter
    PREVIOUS_HOP = "previous_hop"  # the message this one continues


class Link(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: LinkKind
    queue_id: str
    host: str | None = None  # configured server name; None when it is not ours
    relay: str | None = None  # the relay= text that named it
    notice: str | None = None  # for BOUNCE: Postfix's words, e.g. "sender delay notification"


class Recipient(BaseModel):
    model_config = ConfigDict(frozen=True)

    address: str
    orig_to: str | None = None
    status: Status
    postfix_status: str | None = None  # Postfix's own word, kept verbatim
    dsn: str | None = None
    relay: str | None = None
    reason: str | None = None  # the remote server's words or Postfix's reason
    attempts: int = 0  # delivery attempts seen (deferrals + final)
    last_attempt: datetime | None = None
    explanation: str = ""
    action_by: str = ""  # who has to act: nobody / sender / recipient's admin / us
    handed_to: str | None = None  # queue ID its delivery created ("queued as" / "forwarded as")
    # relay= of the after-queue content filter that took it ("queued as" a copy) or judged it
    content_filter: str | None = None
    smtp_stage: str | None = None  # where in the SMTP session a reject/milter acted (RCPT, ...)


class Message(BaseModel):
    model_config = ConfigDict(frozen=True)

    host: str  # configured server name (source), or the syslog host
    queue_id: str | None  # None for a pre-queue reject
    message_id: str | None = None
    sender: str | None = None
    client: str | None = None  # host[ip] it came from, or "local (uid N)"
    size: int | None = None
    status: Status
    summary: str = ""  # one line of plain words
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    started_before_logs: bool = False  # its first lines lie before the searched logs
    recipients: tuple[Recipient, ...] = ()
    links: tuple[Link, ...] = ()
    notes: tuple[str, ...] = ()  # holds, header actions, warnings worth showing
    lines: tuple[str, ...] = Field(default=(), repr=False)  # raw lines, in order
