"""What an answer says, independent of where it is shown.

Strategy: turn a SearchResult into plain-language lines once — a headline, one verdict line per
message, and one detail section per message (the thread reply in Slack) — so the terminal and
Slack show the same content. Times are shown in the asker's zone. No markup here: renderers
escape and decorate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from bot.render.empty import diagnosis_lines, empty_headline, empty_summary, window_line
from bot.result import SearchResult
from parsers.dsn import describe_dsn
from parsers.models import LinkKind, Message, Status

EMOJI: dict[Status, str] = {
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
_LINK_WORDS = {
    LinkKind.NEXT_HOP: "continues",
    LinkKind.FORWARDED: "forwarded as",
    LinkKind.BOUNCE: "bounce notice",
    LinkKind.REINJECTED: "after the content filter",
    LinkKind.PREVIOUS_HOP: "came from",
}


@dataclass
class MessageView:
    verdict: str  # one line for the parent message
    title: str
    lines: list[str] = field(default_factory=list)  # the detail section
    raw: tuple[str, ...] = ()


@dataclass
class AnswerView:
    headline: str
    verdicts: list[str]
    messages: list[MessageView]
    footer: list[str]  # what was searched, failures, notes
    diagnosis: list[str]
    empty_summary: str = ""  # for an empty answer: one sentence in place of the verdicts


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
    return address or "<> (a bounce)"


def build_view(result: SearchResult, zone: tzinfo, *, contact: str | None = None) -> AnswerView:
    """Everything an answer shows, as plain lines. `contact` (Slack): whom a reader without
    server access should ask when the servers need attention (see `render.empty`)."""
    count = len(result.messages)
    servers = len(result.searched)
    noun = "message" if count == 1 else "messages"
    headline = f"{result.query.describe()}: {count} {noun}" if count else empty_headline(result)
    verdicts = [verdict_line(m, zone) for m in result.messages]
    footer = [
        f"Searched {servers} server{'s' if servers != 1 else ''} in {result.duration_s:.2f} s."
    ]
    footer.extend(line for line in [window_line(result)] if line)
    for coverage in result.searched:
        first, last = coverage.span
        files = [f for f in coverage.files if f.searched]
        footer.append(
            f"{coverage.server}: {len(files)} of {len(coverage.files)} log files searched, "
            f"logs cover {short_when(first, zone)} – {short_when(last, zone)}"
        )
    footer.extend(f"⚠️ {f.server}: {f.reason}: {f.detail}" for f in result.failures)
    footer.extend(f"ℹ️ {note}" for note in result.notes)
    return AnswerView(
        headline=headline,
        verdicts=verdicts,
        messages=[message_view(m, zone) for m in result.messages],
        footer=footer,
        diagnosis=diagnosis_lines(result, contact),
        empty_summary="" if count else empty_summary(result),
    )


def verdict_line(m: Message, zone: tzinfo) -> str:
    """'✅ sent — sender2@example.net → recipient2@example.org (mx1, May 13 10:00)'"""
    rcpts = ", ".join(r.address for r in m.recipients[:3])
    if len(m.recipients) > 3:
        rcpts += f" and {len(m.recipients) - 3} more"
    where = f"{m.host}, {short_when(m.first_seen, zone)}"
    counts = "" if len({r.status for r in m.recipients}) <= 1 else f" ({m.summary})"
    if m.queue_id is None and m.recipients and m.recipients[0].attempts > 1:
        counts += f" ×{m.recipients[0].attempts}"
    return (
        f"{EMOJI[m.status]} {m.status.value}{counts} — {who(m.sender)} → {rcpts or '?'} ({where})"
    )


def message_view(m: Message, zone: tzinfo) -> MessageView:
    qid = m.queue_id or "NOQUEUE (refused before queueing)"
    lines = [f"{EMOJI[m.status]} {m.status.value.upper()} — {m.summary}"]
    lines.append(f"From: {who(m.sender)}" + (f" via {m.client}" if m.client else ""))
    if m.message_id is not None:
        lines.append(f"Message-ID: <{m.message_id}>")
    lines.append(f"Seen: {when(m.first_seen, zone)} → {when(m.last_seen, zone)}")
    if m.started_before_logs:
        lines.append("Its first lines lie before the searched logs (it was queued earlier).")
    for r in m.recipients:
        to = r.address + (f" (sent to {r.orig_to})" if r.orig_to else "")
        lines.append(f"{EMOJI[r.status]} {to}: {r.status.value}")
        lines.append(f"   {r.explanation}")
        if r.reason:
            lines.append(f"   Server said: “{r.reason}”")
        meaning = describe_dsn(r.dsn)
        if r.dsn and r.status is Status.SENT and meaning:
            lines.append(f"   DSN {r.dsn}: {meaning}")
        if r.relay and r.status is not Status.SENT:
            lines.append(f"   Relay: {r.relay}")
        if r.attempts > 1:
            what = "refusals" if r.status is Status.REJECTED else "delivery attempts"
            lines.append(f"   {r.attempts} {what}, last at {when(r.last_attempt, zone)}")
        lines.append(f"   Who acts: {r.action_by}")
    for link in m.links:
        where = link.host or (link.relay or "outside our servers")
        lines.append(f"↪ {_LINK_WORDS[link.kind]} {link.queue_id} on {where}")
    lines.extend(f"• {note}" for note in m.notes)
    return MessageView(
        verdict=verdict_line(m, zone),
        title=f"{m.host} {qid}",
        lines=lines,
        raw=m.lines,
    )
