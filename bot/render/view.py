"""What an answer says, independent of where it is shown.

Strategy: turn a SearchResult into plain-language lines once — a headline with the tally, one
verdict line per mail (journey), and one story per mail (the thread reply in Slack; see
`story`) — so the terminal and Slack show the same content. Times are shown in the asker's
zone. No markup here: renderers escape and decorate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

from bot.errors import failure_words
from bot.i18n import ENGLISH, Language
from bot.render.empty import diagnosis_lines, empty_headline, empty_summary, window_line
from bot.render.story import Story, short_when, tally, tell
from bot.result import SearchResult


@dataclass
class AnswerView:
    headline: str
    verdicts: list[str]  # one line per mail, in order
    stories: list[Story]  # one per mail: the thread reply
    footer: list[str]  # how many servers were searched, and the window
    diagnosis: list[str]
    coverage: list[str] = field(default_factory=list)  # per server: files searched, their span
    problems: list[str] = field(default_factory=list)  # failed servers, notes (incomplete?)
    empty_summary: str = ""  # for an empty answer: one sentence in place of the verdicts


def build_view(
    result: SearchResult,
    zone: tzinfo,
    now: datetime | None = None,
    *,
    contact: str | None = None,
    lang: Language = ENGLISH,
) -> AnswerView:
    """Everything an answer shows, as plain lines; `now` is for "how long ago". `contact`
    (Slack): whom a reader without server access should ask when the servers need attention
    (see `render.empty`). Everything is worded in `lang`."""
    _ = lang.gettext
    now = now or datetime.now(UTC)
    servers = len(result.searched)
    live = {(state.host, state.queue_id): state for state in result.live}
    stories = [tell(j, result.messages, zone, now, lang, live) for j in result.journeys]
    headline = (
        f"{result.query.describe(lang)} — {tally(result.journeys, lang)}"
        if result.journeys
        else empty_headline(result, lang)
    )
    verdicts = [story.verdict for story in stories]
    footer = [
        lang.ngettext(
            "Searched {n} server in {seconds:.2f} s.",
            "Searched {n} servers in {seconds:.2f} s.",
            servers,
        ).format(n=servers, seconds=result.duration_s)
    ]
    footer.extend(line for line in [window_line(result, lang)] if line)
    covered = []
    for coverage in result.searched:
        if not coverage.files:
            continue  # nothing was listed there: the problem line below says why
        first, last = coverage.span
        files = [f for f in coverage.files if f.searched]
        if first is None or last is None:
            covered.append(
                _("{server}: {n} of {total} log files searched").format(
                    server=coverage.server, n=len(files), total=len(coverage.files)
                )
            )
            continue
        covered.append(
            _("{server}: {n} of {total} log files searched, logs cover {first} – {last}").format(
                server=coverage.server,
                n=len(files),
                total=len(coverage.files),
                first=short_when(first, zone, lang),
                last=short_when(last, zone, lang),
            )
        )
    problems = [
        f"⚠️ {f.server}: {failure_words(f.reason, lang)}: {f.detail}" for f in result.failures
    ]
    problems.extend(f"ℹ️ {note}" for note in result.notes)
    return AnswerView(
        headline=headline,
        verdicts=verdicts,
        stories=stories,
        footer=footer,
        diagnosis=diagnosis_lines(result, contact, lang),
        empty_summary="" if result.journeys else empty_summary(result, lang),
        coverage=covered,
        problems=problems,
    )
