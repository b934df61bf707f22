"""What an answer says, independent of where it is shown.

Strategy: turn a SearchResult into plain-language lines once — a headline with the tally, one
verdict line per mail (journey), and one story per mail (the thread reply in Slack; see
`story`) — so the terminal and Slack show the same content. Times are shown in the asker's
zone. No markup here: renderers escape and decorate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from bot.render.empty import diagnosis_lines, empty_headline, empty_summary, window_line
from bot.render.story import Story, short_when, tally, tell
from bot.result import SearchResult


@dataclass
class AnswerView:
    headline: str
    verdicts: list[str]  # one line per mail, in order
    stories: list[Story]  # one per mail: the thread reply
    footer: list[str]  # what was searched, failures, notes
    diagnosis: list[str]
    empty_summary: str = ""  # for an empty answer: one sentence in place of the verdicts


def build_view(
    result: SearchResult,
    zone: tzinfo,
    now: datetime | None = None,
    *,
    contact: str | None = None,
) -> AnswerView:
    """Everything an answer shows, as plain lines; `now` is for "how long ago". `contact`
    (Slack): whom a reader without server access should ask when the servers need attention
    (see `render.empty`)."""
    now = now or datetime.now(UTC)
    servers = len(result.searched)
    live = {(state.host, state.queue_id): state for state in result.live}
    stories = [tell(j, result.messages, zone, now, live) for j in result.journeys]
    headline = (
        f"{result.query.describe()} — {tally(result.journeys)}"
        if result.journeys
        else empty_headline(result)
    )
    verdicts = [story.verdict for story in stories]
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
        stories=stories,
        footer=footer,
        diagnosis=diagnosis_lines(result, contact),
        empty_summary="" if result.journeys else empty_summary(result),
    )
