"""One journey told in plain lines: the verdict first, then each recipient's end of the road.

Strategy: a reader on a phone reads the first line and maybe the next few. So the first line is
the verdict from the asker's side ("Delivered to 1 of 2 — x bounced: the mailbox does not
exist"), then one line per recipient saying where it ended and why, indented details under it
(road, the server's own words, times, who acts), the notices the mail caused, and last a small
evidence line with the servers and queue IDs (what an admin greps for, not what a teammate
needs). The time lines under a recipient come from `times`, the live queue's from `live`. No
markup: the renderers escape and decorate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from bot.i18n import ENGLISH, Language
from bot.render.live import live_lines
from bot.render.times import ago, outcome_times
from parsers.dsn import describe_dsn
from parsers.i18n import N_
from parsers.joining import NoticeKind
from parsers.journey import Journey, Notice, Outcome, Verdict
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
    Verdict.DELIVERED: N_("delivered"),
    Verdict.PARTLY_DELIVERED: N_("partly delivered"),
    Verdict.BOUNCED: N_("bounced"),
    Verdict.EXPIRED: N_("given up"),
    Verdict.REJECTED: N_("refused"),
    Verdict.DEFERRED: N_("still retrying"),
    Verdict.HELD: N_("on hold"),
    Verdict.DELETED: N_("deleted"),
    Verdict.DISCARDED: N_("dropped"),
    Verdict.UNKNOWN: N_("no outcome logged"),
}
# How a not-delivered recipient is named in a verdict: "x bounced: …".
_FAILED_WORDS: dict[Status, str] = {
    Status.BOUNCED: N_("{address} bounced: {reason}"),
    Status.EXPIRED: N_("{address} was given up: {reason}"),
    Status.REJECTED: N_("{address} was refused: {reason}"),
    Status.DEFERRED: N_("{address} is not delivered yet: {reason}"),
    Status.HELD: N_("{address} is on hold: {reason}"),
    Status.DELETED: N_("{address} was deleted by an admin: {reason}"),
    Status.DISCARDED: N_("{address} was dropped by policy: {reason}"),
    Status.UNKNOWN: N_("{address} has no outcome logged: {reason}"),
}
_NOTICE_WORDS = {
    NoticeKind.BOUNCE: N_("Bounce notice"),
    NoticeKind.DELAY: N_("Delay warning"),
    NoticeKind.SUCCESS: N_("Delivery confirmation"),
    NoticeKind.OTHER: N_("Notice"),
}
# Postfix's status words, as a notice's state: "Bounce notice to a@b: sent"
_STATE_WORDS: dict[Status, str] = {
    Status.SENT: N_("delivered"),
    Status.BOUNCED: N_("bounced"),
    Status.DEFERRED: N_("deferred"),
    Status.EXPIRED: N_("expired"),
    Status.REJECTED: N_("rejected"),
    Status.DISCARDED: N_("discarded"),
    Status.HELD: N_("held"),
    Status.DELETED: N_("deleted"),
    Status.UNKNOWN: N_("unknown"),
}
# Steps of a road that are no server: journey.py names them in English
_ROAD_WORDS = {"mailbox": N_("mailbox"), "content filter": N_("content filter")}


@dataclass
class Story:
    verdict: str  # the one line: parent summary and the reply's first line
    lines: list[str] = field(default_factory=list)  # per recipient, notices
    evidence: list[str] = field(default_factory=list)  # servers, queue IDs, Message-ID
    raw: tuple[str, ...] = ()  # every log line of the journey, for "Show log lines"
    title: str = ""  # names the journey's log lines (a file name, a button's post)


def when(moment: datetime | None, zone: tzinfo, lang: Language = ENGLISH) -> str:
    return lang.when(moment, zone)


def short_when(moment: datetime | None, zone: tzinfo, lang: Language = ENGLISH) -> str:
    return lang.short_when(moment, zone)


def who(address: str | None, lang: Language = ENGLISH) -> str:
    if address is None:
        return "?"
    return address or lang.gettext("<> (the mail system)")


def tally(journeys: Sequence[Journey], lang: Language = ENGLISH) -> str:
    """'1 mail: delivered to 1 of 2' or '3 mails: 2 delivered, 1 bounced'."""
    _ = lang.gettext
    n = len(journeys)
    head = lang.ngettext("{n} mail", "{n} mails", n).format(n=n)
    if n == 1:
        return _("{what}: {why}").format(what=head, why=_(TALLY_WORDS[journeys[0].verdict]))
    counts: dict[Verdict, int] = {}
    for j in journeys:
        counts[j.verdict] = counts.get(j.verdict, 0) + 1
    parts = [f"{counts[v]} {_(TALLY_WORDS[v])}" for v in Verdict if v in counts]
    return _("{what}: {why}").format(what=head, why=_(", ").join(parts))


def tell(
    j: Journey,
    messages: Sequence[Message],
    zone: tzinfo,
    now: datetime,
    lang: Language = ENGLISH,
    live: Mapping[tuple[str, str], LiveQueue] | None = None,
) -> Story:
    """The whole story of one journey, in `lang`; `live`: the live queue by (server, queue ID)."""
    _ = lang.gettext
    lines: list[str] = []
    for o in j.recipients:
        # One recipient: the verdict already says how it ended.
        end = ""
        if len(j.recipients) > 1 or o.status is Status.SENT:
            end = " — " + _end_words(o, lang)
        lines.append(f"{STATUS_EMOJI[o.status]} {o.address}{end}")
        state = (live or {}).get((o.host, o.queue_id or ""))
        lines.extend(f"   {line}" for line in _details(o, zone, now, lang, state))
    if not j.recipients:
        lines.extend(_no_recipient(j, zone, now, lang))
    lines.extend(_notice_line(n, zone, lang) for n in j.notices)
    if j.started_before_logs:
        lines.append(_("It was queued before the searched logs begin: its start is not shown."))
    raw = [line for ref in j.messages for line in messages[ref.index].lines]
    raw += [line for n in j.notices for line in messages[n.index].lines]
    first = j.messages[0] if j.messages else None
    title = f"{first.host} {first.queue_id or 'NOQUEUE'}" if first else "mail"
    return Story(
        verdict=verdict_line(j, zone, lang),
        lines=lines,
        evidence=_evidence(j, messages, lang),
        raw=tuple(raw),
        title=title,
    )


def verdict_line(j: Journey, zone: tzinfo, lang: Language = ENGLISH) -> str:
    """'⚠️ Delivered to 1 of 2 — x@example.org bounced: … · a@b → x, y · Nov 28 16:58'"""
    rcpts = [o.address for o in j.recipients]
    to = ", ".join(rcpts[:2])
    if len(rcpts) > 2:
        to = lang.gettext("{first} and {n} more").format(first=to, n=len(rcpts) - 2)
    to = to or lang.gettext("(recipients not logged)")
    head = _verdict_words(j, lang)
    if lang.code == "en":  # a sentence's capital; other scripts have none (and hosts keep case)
        head = head[0].upper() + head[1:]
    return (
        f"{VERDICT_EMOJI[j.verdict]} {head} · {who(j.sender, lang)} → "
        f"{to} · {lang.short_when(j.first_seen, zone)}"
    )


def _verdict_words(j: Journey, lang: Language) -> str:
    """The verdict as a person would say it, with the first failure's reason."""
    _ = lang.gettext
    n = len(j.recipients)
    failed = [o for o in j.recipients if o.status is not Status.SENT]
    if j.is_notice:
        return _notice_verdict(j, lang)
    if not j.recipients and j.verdict is Verdict.UNKNOWN:
        return _("accepted, nothing logged since")
    if not j.recipients:
        return _(TALLY_WORDS[j.verdict])
    if not failed:
        return _("delivered") if n == 1 else _("delivered to all {n}").format(n=n)
    first = failed[0]
    reason = _(_FAILED_WORDS[first.status]).format(
        address=first.address, reason=_short_reason(first, lang)
    )
    more = ""
    if len(failed) > 1:
        more = _("; {n} more not delivered").format(n=len(failed) - 1)
    if j.verdict is Verdict.PARTLY_DELIVERED:
        return _("delivered to {ok} of {n} — {reason}{more}").format(
            ok=n - len(failed), n=n, reason=reason, more=more
        )
    if n == 1:
        return _("{what}: {why}").format(
            what=_single_words(first, lang), why=_short_reason(first, lang)
        )
    kinds = {o.status for o in failed}
    if len(kinds) == 1:
        return _("{verdict} for all {n} — {reason}").format(
            verdict=_(TALLY_WORDS[j.verdict]), n=n, reason=_short_reason(first, lang)
        )
    return _("not delivered to any of {n} — {reason}{more}").format(n=n, reason=reason, more=more)


def _notice_verdict(j: Journey, lang: Language) -> str:
    to = j.recipients[0].address if j.recipients else "?"
    state = _STATE_WORDS[Status.SENT] if j.verdict is Verdict.DELIVERED else TALLY_WORDS[j.verdict]
    return lang.gettext("a notice from the mail system to {to}: {state}").format(
        to=to, state=lang.gettext(state)
    )


def _single_words(o: Outcome, lang: Language) -> str:
    """How one recipient ended, in a few words: 'bounced by mx.example.org'."""
    _ = lang.gettext
    if o.status is Status.BOUNCED:
        return _("bounced by {server}").format(server=_who_refused(o, lang))
    if o.status is Status.DEFERRED and not o.temporary:
        return _("not delivered yet, still retrying")
    words = {
        Status.EXPIRED: _("given up and returned to the sender"),
        Status.REJECTED: _("refused at the door by {host}"),
        Status.DEFERRED: _("refused for now by {host}"),
        Status.HELD: _("on hold on {host}"),
        Status.DELETED: _("deleted from the queue on {host}"),
        Status.DISCARDED: _("dropped by policy on {host}"),
        Status.UNKNOWN: _("accepted by {host}, nothing logged since"),
    }[o.status]
    return words.format(host=o.host)


def _no_recipient(j: Journey, zone: tzinfo, now: datetime, lang: Language) -> list[str]:
    """A mail accepted with nothing logged after: what that means and what to do."""
    _ = lang.gettext
    if j.verdict is not Verdict.UNKNOWN or not j.messages:
        return [_("No recipient was logged for it.")]
    return [
        _(
            "Accepted by {host} at {time} ({ago}); no delivery was logged after that. It is "
            "still in the queue, or the searched logs end there: ask the mail team to look at "
            "the queue."
        ).format(
            host=j.messages[0].host,
            time=lang.when(j.first_seen, zone),
            ago=ago(j.first_seen, now, lang),
        )
    ]


def _short_reason(o: Outcome, lang: Language) -> str:
    _ = lang.gettext
    if o.status is Status.DELETED:
        return _("an admin removed it before it was delivered")
    if o.status is Status.HELD:
        return _("waiting for an admin to release or delete it")
    if o.refused_by and describe_dsn(o.dsn):  # name our own server that answered
        meaning = describe_dsn(o.dsn, lang)
        assert meaning is not None
        return meaning.replace(_("the receiving server"), o.refused_by)
    meaning = describe_dsn(o.dsn, lang)
    if meaning:
        return meaning
    if o.status is Status.UNKNOWN:
        return _("still queued, or the logs end there")
    if o.reason:
        return f"“{o.reason}”"
    return o.explanation.rstrip(".。").split(". ")[0].split("。")[0].lower()


def _who_refused(o: Outcome, lang: Language) -> str:
    if o.refused_by is not None:
        return o.refused_by
    relay = (o.relay or "").split("[", 1)[0]
    if relay and "[" in (o.relay or ""):
        return lang.gettext("the receiving server {host}").format(host=relay)
    return o.host


def _end_words(o: Outcome, lang: Language) -> str:
    """Where the recipient ended, in a few words: 'delivered to the mailbox on mx-b'."""
    _ = lang.gettext
    if o.status is Status.SENT:
        end = o.road[-1] if o.road else o.host
        if end == "mailbox":
            return _("delivered to the mailbox on {host}").format(host=o.host)
        if end in (o.host, "content filter"):
            return _("delivered by {host}").format(host=o.host)
        return _("handed to {next} (outside our servers) by {host}").format(next=end, host=o.host)
    return _("{what}: {why}").format(what=_single_words(o, lang), why=_short_reason(o, lang))


def _details(
    o: Outcome, zone: tzinfo, now: datetime, lang: Language, state: LiveQueue | None
) -> list[str]:
    _ = lang.gettext
    out: list[str] = []
    if o.orig_to and o.orig_to != o.address:
        out.append(_("Sent to {address}, which led here.").format(address=o.orig_to))
    if len(o.road) > 1:
        road = " → ".join(_(_ROAD_WORDS[s]) if s in _ROAD_WORDS else s for s in o.road)
        out.append(_("Road: {road}").format(road=road))
    out.extend(_("Delayed on the way: {hold_up}.").format(hold_up=h) for h in o.hold_ups)
    if o.status is Status.SENT:
        out.append(_("At {time}.").format(time=lang.when(o.at, zone)))
        return out
    out.append(o.explanation)
    if o.reason:
        out.append(_said(o, lang))
    out.extend(outcome_times(o, zone, now, lang))
    out.extend(live_lines(o, state, zone, lang))
    out.append(_("Who acts: {who}").format(who=o.action_by))
    return out


def _said(o: Outcome, lang: Language) -> str:
    """The server's own words, once: 'mx-b said: “450 4.2.0 …”'."""
    reason = o.reason or ""
    speaker = o.refused_by
    if reason.startswith("host ") and " said: " in reason:
        host, _sep, reason = reason.partition(" said: ")
        speaker = speaker or host.removeprefix("host ").split("[", 1)[0]
    return lang.gettext("{server} said: “{words}”").format(server=speaker or o.host, words=reason)


def _notice_line(n: Notice, zone: tzinfo, lang: Language) -> str:
    _ = lang.gettext
    what, state = _(_NOTICE_WORDS[n.kind]), _(_STATE_WORDS[n.status])
    where = f"({n.host}, {lang.short_when(n.at, zone)})"
    if n.to is None:
        return "📨 " + _("{notice}: {state} {where}").format(notice=what, state=state, where=where)
    return "📨 " + _("{notice} to {to}: {state} {where}").format(
        notice=what, to=who(n.to, lang), state=state, where=where
    )


def _evidence(j: Journey, messages: Sequence[Message], lang: Language) -> list[str]:
    _ = lang.gettext
    hops = " → ".join(
        f"{ref.host} {ref.queue_id}" for ref in j.messages if ref.queue_id is not None
    )
    unqueued = [(ref.host, messages[ref.index].status) for ref in j.messages if not ref.queue_id]
    refusals = [host for host, status in unqueued if status is not Status.SENT]
    accepted = [host for host, status in unqueued if status is Status.SENT]
    out = [_("Queue IDs: {hops}").format(hops=hops)] if hops else []
    if refusals:
        out.append(
            _("Refused before queueing on {servers}").format(
                servers=", ".join(dict.fromkeys(refusals))
            )
        )
    if accepted:
        out.append(
            _("Accepted by a before-queue filter on {servers}").format(
                servers=", ".join(dict.fromkeys(accepted))
            )
        )
    out.extend(
        _("{notice}: {host} {queue_id}").format(
            notice=_(_NOTICE_WORDS[n.kind]), host=n.host, queue_id=n.queue_id
        )
        for n in j.notices
    )
    if j.message_id:
        out.append(f"Message-ID: <{j.message_id}>")
    if j.client:
        out.append(_("From client {client}").format(client=j.client))
    return out
