"""Messages -> journeys: one per mail as the sender sent it, each recipient at the end of its road.

Strategy: the trace gives one `Message` per (server, queue ID life), linked where the logs say
so. A person asks about the mail, not about queue files, so `parsers.joining` first joins the
messages that are one mail (hand-overs, Message-ID, notices, a next hop's refusal as evidence).

Each recipient the sender addressed is then followed from the first server along the per-
recipient hand-over ("queued as" / "forwarded as" in its own delivery line) to its last state:
that is its outcome, with where it ended, why, when and who acts. The journey's verdict is read
from the outcomes as the asker would: delivered, partly delivered, or the worst failure.

Pure: no I/O, no clock. Queue lifetimes come from configuration (the logs never say them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from parsers.explain import explain_status
from parsers.i18n import ENGLISH, Translator
from parsers.joining import Links, NoticeKind, answered_by, stamp
from parsers.models import STATUS_SEVERITY, Message, Recipient, Status
from parsers.trace import resolve_local_relays

DEFAULT_QUEUE_LIFETIME = timedelta(days=5)  # Postfix's maximal_queue_lifetime default
_MAILBOX_RELAYS = ("local", "virtual", "maildrop", "dovecot", "lmtp", "pipe")


class Verdict(StrEnum):
    """What happened to the mail, from the asker's side."""

    DELIVERED = "delivered"  # every recipient
    PARTLY_DELIVERED = "partly_delivered"  # some recipients; the others failed or wait
    BOUNCED = "bounced"
    EXPIRED = "expired"
    REJECTED = "rejected"
    DEFERRED = "deferred"
    HELD = "held"
    DELETED = "deleted"
    DISCARDED = "discarded"
    UNKNOWN = "unknown"


class MessageRef(BaseModel):
    """Points at one entry of the answer's `messages` (the per-server evidence)."""

    model_config = ConfigDict(frozen=True)

    host: str
    queue_id: str | None  # None: a refusal before queueing
    index: int  # position in the list the journeys were built from (the answer's messages)


class Notice(BaseModel):
    """A notification the mail caused, and whether it reached the sender."""

    model_config = ConfigDict(frozen=True)

    kind: NoticeKind
    host: str
    queue_id: str
    index: int  # position in the answer's messages
    status: Status  # of the notice's own delivery
    to: str | None = None  # who it was sent to (normally the sender)
    at: datetime | None = None


class Outcome(BaseModel):
    """One recipient at the end of its road."""

    model_config = ConfigDict(frozen=True)

    address: str
    orig_to: str | None = None  # the address the sender used, when an alias changed it
    status: Status
    host: str  # the server whose logs hold the last state
    queue_id: str | None  # the queue ID there (None: refused before queueing)
    road: tuple[str, ...] = ()  # e.g. ("mx-a", "mx-b", "mailbox")
    relay: str | None = None
    refused_by: str | None = None  # one of our servers refused it during SMTP
    temporary: bool = False  # a 4xx refusal: the sending side keeps it and retries
    dsn: str | None = None
    reason: str | None = None  # the remote server's (or Postfix's) own words
    explanation: str = ""
    action_by: str = ""
    attempts: int = 0
    at: datetime | None = None  # when the last state was logged
    queued_at: datetime | None = None  # when the mail entered the first server
    deferred_since: datetime | None = None  # queued since, while not final
    gives_up_at: datetime | None = None  # arrival + queue lifetime, while deferred
    hold_ups: tuple[str, ...] = ()  # delays on the way, e.g. a next hop's "try later" first


class Journey(BaseModel):
    """One mail as the sender sent it."""

    model_config = ConfigDict(frozen=True)

    verdict: Verdict
    sender: str | None
    message_id: str | None = None
    client: str | None = None
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    started_before_logs: bool = False
    recipients: tuple[Outcome, ...] = ()
    messages: tuple[MessageRef, ...] = ()
    notices: tuple[Notice, ...] = ()

    @property
    def is_notice(self) -> bool:
        """A bounce or other notification whose mail is not in the answer."""
        return self.sender == ""


def build_journeys(
    messages: Sequence[Message],
    lifetimes: Mapping[str, timedelta] | None = None,
    tr: Translator = ENGLISH,
) -> list[Journey]:
    """Join messages into journeys, ordered by first line; every message lands in exactly one.
    What the joining adds in words (a refusal's meaning, a hold-up) is worded with `tr`."""
    return _Roads(messages, lifetimes or {}, tr).journeys()


class _Roads(Links):
    """Each joined mail told as a journey: every recipient followed to the end of its road."""

    def __init__(
        self, messages: Sequence[Message], lifetimes: Mapping[str, timedelta], tr: Translator
    ) -> None:
        super().__init__(messages)
        self.tr = tr
        self.lifetimes = lifetimes

    def journeys(self) -> list[Journey]:
        groups, notices = self.join()
        built = [self.journey(members, notices.get(root, [])) for root, members in groups.items()]
        return sorted(built, key=_journey_order)

    # -- one journey -------------------------------------------------------------------------
    def journey(self, members: list[int], notice_ids: list[int]) -> Journey:
        members.sort(key=lambda k: (stamp(self.m[k].first_seen), k))
        queued = [k for k in members if self.m[k].queue_id is not None]
        roots = [k for k in queued if k not in self.incoming] or queued or members
        outcomes: dict[str, Outcome] = {}
        for root in roots:
            for r in self.m[root].recipients:
                for outcome in self.follow(root, r, (), root, set(), (), r.orig_to or r.address):
                    seen = outcomes.get(outcome.address)
                    if seen is None or stamp(outcome.at) >= stamp(seen.at):
                        outcomes[outcome.address] = outcome
        first = self.m[roots[0]]
        stamps = [s for k in members for s in (self.m[k].first_seen, self.m[k].last_seen) if s]
        recipients = tuple(outcomes.values())
        return Journey(
            verdict=_verdict(recipients, first),
            sender=first.sender,
            message_id=next((self.m[k].message_id for k in roots if self.m[k].message_id), None),
            client=first.client,
            first_seen=min(stamps) if stamps else None,
            last_seen=max(stamps) if stamps else None,
            started_before_logs=first.started_before_logs,
            recipients=recipients,
            messages=tuple(
                MessageRef(host=self.m[k].host, queue_id=self.m[k].queue_id, index=k)
                for k in members
            ),
            notices=tuple(self.notice(k) for k in sorted(notice_ids, key=self._first)),
        )

    def _first(self, k: int) -> float:
        return stamp(self.m[k].first_seen)

    def notice(self, k: int) -> Notice:
        msg = self.m[k]
        return Notice(
            kind=self.notice_of[k][1],
            host=msg.host,
            queue_id=msg.queue_id or "",
            index=k,
            status=msg.status,
            to=msg.recipients[0].address if msg.recipients else None,
            at=msg.first_seen,
        )

    def follow(
        self,
        i: int,
        r: Recipient,
        road: tuple[str, ...],
        root: int,
        seen: set[int],
        hold_ups: tuple[str, ...],
        asked: str,
    ) -> list[Outcome]:
        """The outcomes recipient `r` of message `i` leads to (several after an alias)."""
        msg = self.m[i]
        road = (*road, msg.host) if not road or road[-1] != msg.host else road
        seen = seen | {i}
        if r.status is Status.SENT and r.attempts > 1:
            hold_ups = (*hold_ups, self.hold_up(i, r))
        if r.status is Status.SENT:
            nexts = [j for j in self.children.get(i, []) if self.m[j].queue_id == r.handed_to]
            if not nexts:
                nexts = [
                    j
                    for j in self.implicit.get(i, [])
                    if any(_continues(x, r) for x in self.m[j].recipients)
                ]
            out: list[Outcome] = []
            for j in nexts:
                if j in seen:
                    continue
                step = road
                if self.m[j].host == msg.host and (r.content_filter or _on_loopback(r, msg.host)):
                    step = (*road, "content filter")
                for x in self._continued(j, r):
                    out.extend(self.follow(j, x, step, root, seen, hold_ups, asked))
            if out:
                return out
        return [self.outcome(i, r, road, root, hold_ups, asked)]

    def hold_up(self, i: int, r: Recipient) -> str:
        """'mx1 needed 2 attempts; mx2 answered “450 4.7.1 …” first (09:00:13 UTC)'."""
        msg = self.m[i]
        for k in self.refusals.get(i, []):
            refusal = self.m[k]
            first = refusal.recipients[0]
            if any(x.address in (r.address, r.orig_to) for x in refusal.recipients):
                words = " ".join(w for w in (first.dsn, first.reason) if w)
                return self.tr.gettext(
                    "{host} needed {n} attempts; {other} answered “{words}” first"
                ).format(host=msg.host, n=r.attempts, other=refusal.host, words=words)
        return self.tr.gettext("{host} needed {n} attempts").format(host=msg.host, n=r.attempts)

    def _continued(self, j: int, r: Recipient) -> list[Recipient]:
        """The recipients of message `j` that carry on recipient `r` (the same address, or
        addresses an alias on that server expanded it to); all of them when `r` alone was
        handed to `j` and none matches (a rewrite we cannot see)."""
        matching = [x for x in self.m[j].recipients if _continues(x, r)]
        return matching or list(self.m[j].recipients)

    def outcome(
        self,
        i: int,
        r: Recipient,
        road: tuple[str, ...],
        root: int,
        hold_ups: tuple[str, ...],
        asked: str,
    ) -> Outcome:
        """Recipient `r` of message `i` at the end of its road; `asked` is the address the
        sender used (kept as orig_to when an alias led elsewhere)."""
        msg = self.m[i]
        status, explanation, action_by = r.status, r.explanation, r.action_by
        refusal = self.refusal_for(i, r)
        refused_by = refusal.host if refusal is not None else None
        temporary = False
        if msg.queue_id is None and status is Status.REJECTED and _is_temporary(r.dsn):
            status, temporary = Status.DEFERRED, True
            explanation = self.tr.gettext(
                "Refused for now during the SMTP session (a 4xx answer): the sending server "
                "keeps the mail and should try again."
            )
            action_by = self.tr.gettext(
                "nobody yet: the sending server retries; us (the mail team) if it persists"
            )
        elif refused_by is not None and status is Status.BOUNCED:
            # Our own next hop refused it: the same "who acts" as that refusal on its own.
            action_by = explain_status(Status.REJECTED, r.dsn, None, self.tr)[1]
        elif refused_by is not None and status is Status.EXPIRED:
            # It was our own next hop that kept saying "later": nobody outside can fix that.
            action_by = self.tr.gettext(
                "us (the mail team): our own {host} kept refusing it for now"
            ).format(host=refused_by)
        end = _end_of_road(r)
        full_road = road if end is None or status is not Status.SENT else (*road, end)
        if refused_by is not None and refused_by not in full_road:
            full_road = (*full_road, refused_by)
        since = self.m[root].first_seen
        waiting = status in (Status.DEFERRED, Status.UNKNOWN, Status.HELD)
        lifetime = self.lifetimes.get(self.m[root].host, DEFAULT_QUEUE_LIFETIME)
        return Outcome(
            address=r.address,
            orig_to=asked if asked not in (r.address, r.orig_to) else r.orig_to,
            hold_ups=hold_ups,
            status=status,
            host=msg.host,
            queue_id=msg.queue_id,
            road=full_road,
            relay=r.relay,
            refused_by=refused_by,
            temporary=temporary,
            dsn=r.dsn,
            reason=r.reason,
            explanation=explanation,
            action_by=action_by,
            attempts=r.attempts,
            at=r.last_attempt or msg.last_seen,
            queued_at=since,
            deferred_since=since if waiting else None,
            gives_up_at=since + lifetime
            if since is not None and status is Status.DEFERRED and not temporary
            else None,
        )

    def refusal_for(self, i: int, r: Recipient) -> Message | None:
        for k in self.refusals.get(i, []):
            refusal = self.m[k]
            if answered_by(r, refusal) and refusal.recipients[0].dsn == r.dsn:
                return refusal
        return None


def _continues(x: Recipient, r: Recipient) -> bool:
    return r.address in (x.address, x.orig_to) or (r.orig_to is not None and r.orig_to == x.orig_to)


def _on_loopback(r: Recipient, host: str) -> bool:
    """Delivered to a port on its own host (a content filter), by the trace's own rule."""
    return bool(r.relay) and resolve_local_relays(r.relay or "", host) == host


def _is_temporary(dsn: str | None) -> bool:
    return bool(dsn) and str(dsn).startswith("4")


def _end_of_road(r: Recipient) -> str | None:
    """Where a delivered recipient ended beyond the last server: its mailbox, or the outside
    server it was handed to."""
    relay = r.relay or ""
    if relay.split("[", 1)[0] in _MAILBOX_RELAYS or relay.startswith(_MAILBOX_RELAYS):
        return "mailbox"
    if r.handed_to is not None and "forwarded as" in (r.reason or ""):
        return None
    return relay.split("[", 1)[0] or None


def _verdict(recipients: tuple[Outcome, ...], first: Message) -> Verdict:
    if not recipients:
        return Verdict.DELIVERED if first.status is Status.SENT else Verdict(first.status.value)
    delivered = sum(o.status is Status.SENT for o in recipients)
    if delivered == len(recipients):
        return Verdict.DELIVERED
    if delivered:
        return Verdict.PARTLY_DELIVERED
    present = {o.status for o in recipients}
    worst = next(s for s in STATUS_SEVERITY if s in present)
    return Verdict(worst.value)


def _journey_order(j: Journey) -> tuple[float, str]:
    return stamp(j.first_seen), j.messages[0].host if j.messages else ""
