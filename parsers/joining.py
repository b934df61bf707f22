"""Which per-server messages are one mail: the joins behind the journeys.

Strategy: a union-find over the answer's messages. A delivery "queued as" on the next
configured server, a "forwarded as" copy and a content filter's re-injected copy
(orig_queue_id) are explicit hand-overs; the same Message-ID and sender on another server,
when no hand-over was logged, hangs off the earliest copy. Notifications a mail caused (bounce,
delay, success notices) are remembered as its notices, not joined as mails. A next hop's
pre-queue refusal (NOQUEUE) of the same sender and recipient, while another server was
delivering to it, is joined as evidence. `parsers.journey` then follows each recipient along
these hand-overs to the end of its road.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum

from parsers.models import LinkKind, Message, Recipient, Status

# How far apart in time a next hop's refusal may lie from the previous hop's message lines
# and still be its answer (clocks of two servers drift a little).
_REFUSAL_SLACK = timedelta(seconds=120)


class NoticeKind(StrEnum):
    BOUNCE = "bounce"  # sender non-delivery notification
    DELAY = "delay"  # sender delay notification
    SUCCESS = "success"  # sender delivery status notification (DSN success, NOTIFY=SUCCESS)
    OTHER = "other"  # postmaster copies and anything else


def notice_kind(words: str | None) -> NoticeKind:
    """'sender delay notification' -> DELAY, and so on."""
    text = (words or "").lower()
    if "non-delivery" in text:
        return NoticeKind.BOUNCE
    if "delay" in text:
        return NoticeKind.DELAY
    if "delivery status" in text and text.startswith("sender"):
        return NoticeKind.SUCCESS
    return NoticeKind.OTHER


class Links:
    """The joins between messages, by their position in the list given."""

    def __init__(self, messages: Sequence[Message]) -> None:
        self.m = list(messages)
        self.parent = list(range(len(self.m)))
        self.children: dict[int, list[int]] = {}  # downstream hand-overs, explicit links
        self.implicit: dict[int, list[int]] = {}  # downstream by Message-ID only
        self.incoming: set[int] = set()
        self.notice_of: dict[int, tuple[int, NoticeKind]] = {}
        self.refusals: dict[int, list[int]] = {}  # message -> joined NOQUEUE entries
        self.index = {(x.host, x.queue_id): i for i, x in enumerate(self.m) if x.queue_id}

    # -- union-find ----------------------------------------------------------------------
    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def edge(self, up: int, down: int, table: dict[int, list[int]]) -> None:
        if up == down or down in table.get(up, []):
            return
        table.setdefault(up, []).append(down)
        self.incoming.add(down)
        self.union(up, down)

    def join(self) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
        """Every join made; returns the mails (root -> members, in message order) and their
        notices (root -> notice messages)."""
        self.join_links()
        self.join_message_ids()
        self.join_refusals()
        groups: dict[int, list[int]] = {}
        for i in range(len(self.m)):
            if i in self.notice_of and self.find(self.notice_of[i][0]) != self.find(i):
                continue  # told as a notice of the mail that caused it
            groups.setdefault(self.find(i), []).append(i)
        notices: dict[int, list[int]] = {}
        for i, (cause, _) in self.notice_of.items():
            notices.setdefault(self.find(cause), []).append(i)
        return groups, notices

    def join_links(self) -> None:
        for i, msg in enumerate(self.m):
            for link in msg.links:
                j = self.index.get((link.host, link.queue_id)) if link.host else None
                if j is None:
                    continue
                if link.kind is LinkKind.BOUNCE:
                    self.notice_of.setdefault(j, (i, notice_kind(link.notice)))
                elif link.kind is LinkKind.PREVIOUS_HOP:
                    self.edge(j, i, self.children)
                else:  # next hop, forwarded copy, re-injected copy
                    self.edge(i, j, self.children)

    def join_message_ids(self) -> None:
        """The same mail on another server, when no hand-over was logged (or it fell outside
        the searched logs): same Message-ID and sender, on different servers."""
        by_id: dict[tuple[str, str | None], list[int]] = {}
        for i, msg in enumerate(self.m):
            if msg.message_id and msg.queue_id and msg.sender and i not in self.notice_of:
                by_id.setdefault((msg.message_id, msg.sender), []).append(i)
        for members in by_id.values():
            members.sort(key=lambda k: stamp(self.m[k].first_seen))
            up = members[0]  # the earliest copy: the others went on from it
            for down in members[1:]:
                if self.m[up].host == self.m[down].host or self.find(up) == self.find(down):
                    continue
                if down in self.incoming:
                    self.union(up, down)
                else:
                    self.edge(up, down, self.implicit)

    def join_refusals(self) -> None:
        """A next hop's NOQUEUE refusal belongs to the mail another server was delivering to the
        same recipient from the same sender at that time."""
        for k, refusal in enumerate(self.m):
            if refusal.queue_id is not None or refusal.status is Status.SENT:
                continue  # queued, or accepted by a before-queue filter: not a refusal
            if not refusal.recipients:
                continue
            best: tuple[float, int] | None = None
            for i, msg in enumerate(self.m):
                if msg.queue_id is None or msg.host == refusal.host:
                    continue
                if msg.sender != refusal.sender or not _overlaps(msg, refusal):
                    continue
                if not any(answered_by(r, refusal) for r in msg.recipients):
                    continue
                gap = abs(stamp(msg.first_seen) - stamp(refusal.first_seen))
                if best is None or gap < best[0]:
                    best = (gap, i)
            if best is not None:
                self.refusals.setdefault(best[1], []).append(k)
                self.union(best[1], k)


def answered_by(r: Recipient, refusal: Message) -> bool:
    """Could this refusal be the answer `r`'s delivery attempt got? Same address, and `r` went
    out over SMTP and failed at least once (or its final state is that failure)."""
    if not any(x.address in (r.address, r.orig_to) for x in refusal.recipients):
        return False
    went_out = r.relay is not None and "[" in r.relay
    return went_out and (r.attempts > 1 or r.status is not Status.SENT)


def _overlaps(msg: Message, refusal: Message) -> bool:
    if msg.first_seen is None or refusal.first_seen is None:
        return False
    start = msg.first_seen - _REFUSAL_SLACK
    end = (msg.last_seen or msg.first_seen) + _REFUSAL_SLACK
    return start <= refusal.first_seen <= end


def stamp(moment: datetime | None) -> float:
    return moment.timestamp() if moment is not None else float("-inf")
