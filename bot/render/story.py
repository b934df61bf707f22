"""One journey told in plain lines: the verdict first, then each recipient's end of the road.

Strategy: a reader on a phone reads the first line and maybe the next few. So the first line is
the verdict from the asker's side ("Delivered to 1 of 2 — x bounced: the mailbox does not
exist"), then one line per recipient saying where it ended and why, indented details under it
(road, the server's own words, times, who acts), the notices the mail caused, and last a small
evidence line with the servers and queue IDs (what an admin greps for, not what a teammate
needs). No markup: the renderers escape and decorate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo

from bot.render.live import live_lines
from parsers.dsn import describe_dsn
from parsers.journey import Journey, Notice, NoticeKind, Outcome, Verdict
from parsers.models import Message, Status
from parsers.queue import LiveQueue

STATUS_EMOJI: dict[Status, str] = {
    Status.SENT: "✅",
    Status.BOUNCED: "❌",
    Status.DEFERRED: "⏳",
    Status.EXPIRED: "⌛",
    Status.REJECTED: "🚫",
    Status.DISCARDED: "🗑️",
    Status.HELD: "⏸️",
    Status.DELETED: "✂️",
    Status.UNKNOWN: "❓",
}
VERDICT_EMOJI: dict[Verdict, str] = {
    Verdict.DELIVERED: "✅",
    Verdict.PARTLY_DELIVERED: "⚠️",
    **{Verdict(s.value): e for s, e in STATUS_EMOJI.items() if s is not Status.SENT},
}
# The tally's words, e.g. "3 mails: 2 delivered, 1 bounced".
TALLY_WORDS: dict[Verdict, str] = {
    Verdict.DELIVERED: "delivered",
    Verdict.PARTLY_DELIVERED: "partly delivered",
    Verdict.BOUNCED: "bounced",
    Verdict.EXPIRED: "given up",
    Verdict.REJECTED: "refused",
    Verdict.DEFERRED: "still retrying",
    Verdict.HELD: "on hold",
    Verdict.DELETED: "deleted",
    Verdict.DISCARDED: "dropped",
    Verdict.UNKNOWN: "no outcome logged",
}
# How a not-delivered recipient is named in a verdict: "x bounced: …".
_FAILED_WORDS: dict[Status, str] = {
    Status.BOUNCED: "bounced",
    Status.EXPIRED: "was given up",
    Status.REJECTED: "was refused",
    Status.DEFERRED: "is not delivered yet",
    Status.HELD: "is on hold",
    Status.DELETED: "was deleted by an admin",
    Status.DISCARDED: "was dropped by policy",
    Status.UNKNOWN: "has no outcome logged",
}
_NOTICE_WORDS = {
    NoticeKind.BOUNCE: "Bounce notice",
    NoticeKind.DELAY: "Delay warning",
    NoticeKind.SUCCESS: "Delivery confirmation",
    NoticeKind.OTHER: "Notice",
}


@dataclass
class Story:
    verdict: str  # the one line: parent summary and the reply's first line
    lines: list[str] = field(default_factory=list)  # per recipient, notices
    evidence: list[str] = field(default_factory=list)  # servers, queue IDs, Message-ID
    raw: tuple[str, ...] = ()  # every log line of the journey, for "Show log lines"
    title: str = ""  # names the journey's log lines (a file name, a button's post)


def when(moment: datetime | None, zone: tzinfo) -> str:
    if moment is None:
        return "?"
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def short_when(moment: datetime | None, zone: tzinfo) -> str:
    if moment is None:
        return "?"
    return moment.astimezone(zone).strftime("%b %d %H:%M")


def who(address: str | None) -> str:
    if address is None:
        return "?"
    return address or "<> (the mail system)"


def duration(span: timedelta) -> str:
    """'3 days', '5 hours', '12 minutes', '40 seconds' (the largest unit that fits)."""
    seconds = max(0, int(span.total_seconds()))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def tally(journeys: Sequence[Journey]) -> str:
    """'1 mail: delivered to 1 of 2' or '3 mails: 2 delivered, 1 bounced'."""
    if len(journeys) == 1:
        return "1 mail: " + TALLY_WORDS[journeys[0].verdict]
    counts: dict[Verdict, int] = {}
    for j in journeys:
        counts[j.verdict] = counts.get(j.verdict, 0) + 1
    parts = [f"{counts[v]} {TALLY_WORDS[v]}" for v in Verdict if v in counts]
    return f"{len(journeys)} mails: " + ", ".join(parts)


def tell(
    j: Journey,
    messages: Sequence[Message],
    zone: tzinfo,
    now: datetime,
    live: Mapping[tuple[str, str], LiveQueue] | None = None,
) -> Story:
    """The whole story of one journey; `live`: the live queue by (server, queue ID)."""
    lines: list[str] = []
    for o in j.recipients:
        # One recipient: the verdict already says how it ended.
        end = f" — {_end_words(o)}" if len(j.recipients) > 1 or o.status is Status.SENT else ""
        lines.append(f"{STATUS_EMOJI[o.status]} {o.address}{end}")
        state = (live or {}).get((o.host, o.queue_id or ""))
        lines.extend(f"   {line}" for line in _details(o, zone, now, state))
    if not j.recipients:
        lines.append("No recipient was logged for it.")
    lines.extend(_notice_line(n, zone) for n in j.notices)
    if j.started_before_logs:
        lines.append("It was queued before the searched logs begin: its start is not shown.")
    raw = [line for ref in j.messages for line in messages[ref.index].lines]
    raw += [line for n in j.notices for line in messages[n.index].lines]
    first = j.messages[0] if j.messages else None
    title = f"{first.host} {first.queue_id or 'NOQUEUE'}" if first else "mail"
    return Story(
        verdict=verdict_line(j, zone),
        lines=lines,
        evidence=_evidence(j, messages),
        raw=tuple(raw),
        title=title,
    )


def verdict_line(j: Journey, zone: tzinfo) -> str:
    """'⚠️ Delivered to 1 of 2 — x@example.org bounced: … · a@b → x, y · Nov 28 16:58'"""
    rcpts = [o.address for o in j.recipients]
    to = ", ".join(rcpts[:2]) + (f" and {len(rcpts) - 2} more" if len(rcpts) > 2 else "")
    head = _verdict_words(j)
    head = head[0].upper() + head[1:]
    return (
        f"{VERDICT_EMOJI[j.verdict]} {head} · {who(j.sender)} → {to or '?'}"
        f" · {short_when(j.first_seen, zone)}"
    )


def _verdict_words(j: Journey) -> str:
    """The verdict as a person would say it, with the first failure's reason."""
    n = len(j.recipients)
    failed = [o for o in j.recipients if o.status is not Status.SENT]
    if j.is_notice:
        return _notice_verdict(j)
    if not j.recipients:
        return TALLY_WORDS[j.verdict]
    if not failed:
        return "delivered" if n == 1 else f"delivered to all {n}"
    first = failed[0]
    reason = f"{first.address} {_FAILED_WORDS[first.status]}: {_short_reason(first)}"
    more = f"; {len(failed) - 1} more not delivered" if len(failed) > 1 else ""
    if j.verdict is Verdict.PARTLY_DELIVERED:
        return f"delivered to {n - len(failed)} of {n} — {reason}{more}"
    if n == 1:
        return f"{_SINGLE_WORDS[first.status](first)}: {_short_reason(first)}"
    kinds = {o.status for o in failed}
    if len(kinds) == 1:
        return f"{TALLY_WORDS[j.verdict]} for all {n} — {_short_reason(first)}"
    return f"not delivered to any of {n} — {reason}{more}"


def _notice_verdict(j: Journey) -> str:
    to = j.recipients[0].address if j.recipients else "?"
    state = "delivered" if j.verdict is Verdict.DELIVERED else TALLY_WORDS[j.verdict]
    return f"a notice from the mail system to {to}: {state}"


_SINGLE_WORDS: dict[Status, Callable[[Outcome], str]] = {
    Status.BOUNCED: lambda o: f"bounced by {_who_refused(o)}",
    Status.EXPIRED: lambda o: "given up and returned to the sender",
    Status.REJECTED: lambda o: f"refused at the door by {o.host}",
    Status.DEFERRED: lambda o: (
        f"refused for now by {o.host}" if o.temporary else "not delivered yet, still retrying"
    ),
    Status.HELD: lambda o: f"on hold on {o.host}",
    Status.DELETED: lambda o: f"deleted from the queue on {o.host}",
    Status.DISCARDED: lambda o: f"dropped by policy on {o.host}",
    Status.UNKNOWN: lambda o: f"accepted by {o.host}, nothing logged since",
}


def _short_reason(o: Outcome) -> str:
    meaning = describe_dsn(o.dsn)
    if meaning and o.refused_by:  # name our own server that answered
        return meaning.replace("the receiving server", o.refused_by)
    if meaning:
        return meaning
    if o.status is Status.HELD:
        return "waiting for an admin to release or delete it"
    if o.status is Status.UNKNOWN:
        return "still queued, or the logs end there"
    if o.reason:
        return f"“{o.reason}”"
    return o.explanation.rstrip(".").split(". ")[0].lower()


def _who_refused(o: Outcome) -> str:
    if o.refused_by is not None:
        return o.refused_by
    relay = (o.relay or "").split("[", 1)[0]
    if relay and "[" in (o.relay or ""):
        return f"the receiving server {relay}"
    return o.host


def _end_words(o: Outcome) -> str:
    """Where the recipient ended, in a few words: 'delivered to the mailbox on mx-b'."""
    if o.status is Status.SENT:
        end = o.road[-1] if o.road else o.host
        if end == "mailbox":
            return f"delivered to the mailbox on {o.host}"
        if end in (o.host, "content filter"):
            return f"delivered by {o.host}"
        return f"handed to {end} (outside our servers) by {o.host}"
    words = _SINGLE_WORDS[o.status](o)
    return f"{words}: {_short_reason(o)}"


def _details(o: Outcome, zone: tzinfo, now: datetime, state: LiveQueue | None) -> list[str]:
    out: list[str] = []
    if o.orig_to and o.orig_to != o.address:
        out.append(f"Sent to {o.orig_to}, which led here.")
    if len(o.road) > 1:
        out.append("Road: " + " → ".join(o.road))
    out.extend(f"Delayed on the way: {hold_up}." for hold_up in o.hold_ups)
    if o.status is Status.SENT:
        out.append(f"At {when(o.at, zone)}.")
        return out
    out.append(o.explanation)
    if o.reason:
        out.append(_said(o))
    out.extend(_times(o, zone, now))
    out.extend(live_lines(o, state, zone))
    out.append(f"Who acts: {o.action_by}")
    return out


def _said(o: Outcome) -> str:
    """The server's own words, once: 'mx-b said: “450 4.2.0 …”'."""
    reason = o.reason or ""
    speaker = o.refused_by
    if reason.startswith("host ") and " said: " in reason:
        host, _, reason = reason.partition(" said: ")
        speaker = speaker or host.removeprefix("host ").split("[", 1)[0]
    return f"{speaker or o.host} said: “{reason}”"


def _times(o: Outcome, zone: tzinfo, now: datetime) -> list[str]:
    attempts = f"{o.attempts} attempt{'s' if o.attempts != 1 else ''}"
    if o.status is Status.DEFERRED and o.temporary:
        what = "refusal" if o.attempts == 1 else "refusals"
        return [f"{o.attempts} {what}, the last at {when(o.at, zone)}."]
    if o.status is Status.DEFERRED:
        lines = [
            f"Queued since {when(o.deferred_since, zone)} ({_ago(o.deferred_since, now)}); "
            f"{attempts} so far, the last at {when(o.at, zone)}."
        ]
        if o.gives_up_at is not None and o.gives_up_at <= now:
            lines.append(
                f"By {o.host}'s queue lifetime it should have been given up at "
                f"{when(o.gives_up_at, zone)}, but the searched logs say nothing of it: look at "
                "the queue, or check the lifetime in the configuration."
            )
        elif o.gives_up_at is not None:
            lines.append(
                f"Postfix gives up at {when(o.gives_up_at, zone)} (queue lifetime of {o.host}) "
                "and returns it to the sender."
            )
        return lines
    if o.status is Status.UNKNOWN:
        return [
            f"Accepted {_ago(o.deferred_since or o.at, now)}; nothing was logged for it after "
            f"that. It is still in {o.host}'s queue, or the searched logs end there: ask the "
            "mail team to look at the queue."
        ]
    if o.status is Status.HELD:
        return [f"On hold since {when(o.at, zone)} ({_ago(o.at, now)})."]
    if o.status is Status.EXPIRED:
        queued = f" over {duration(o.at - o.queued_at)}" if o.at and o.queued_at else ""
        return [f"Given up at {when(o.at, zone)} after {attempts}{queued}."]
    return [f"At {when(o.at, zone)}" + (f", after {attempts}." if o.attempts > 1 else ".")]


def _ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "at an unknown time"
    if moment > now:
        return "in the future by the server's clock"
    return f"{duration(now - moment)} ago"


def _notice_line(n: Notice, zone: tzinfo) -> str:
    state = "delivered" if n.status is Status.SENT else n.status.value
    to = f" to {who(n.to)}" if n.to is not None else ""
    return f"📨 {_NOTICE_WORDS[n.kind]}{to}: {state} ({n.host}, {short_when(n.at, zone)})"


def _evidence(j: Journey, messages: Sequence[Message]) -> list[str]:
    hops = " → ".join(
        f"{ref.host} {ref.queue_id}" for ref in j.messages if ref.queue_id is not None
    )
    unqueued = [(ref.host, messages[ref.index].status) for ref in j.messages if not ref.queue_id]
    refusals = [host for host, status in unqueued if status is not Status.SENT]
    accepted = [host for host, status in unqueued if status is Status.SENT]
    out = [f"Queue IDs: {hops}"] if hops else []
    if refusals:
        out.append("Refused before queueing on " + ", ".join(dict.fromkeys(refusals)))
    if accepted:
        out.append("Accepted by a before-queue filter on " + ", ".join(dict.fromkeys(accepted)))
    out.extend(f"{_NOTICE_WORDS[n.kind]}: {n.host} {n.queue_id}" for n in j.notices)
    if j.message_id:
        out.append(f"Message-ID: <{j.message_id}>")
    if j.client:
        out.append(f"From client {j.client}")
    return out
