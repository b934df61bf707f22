"""Terminal text: the same content as the Slack thread, top to bottom."""

from __future__ import annotations

from datetime import datetime, tzinfo

from bot.i18n import ENGLISH, Language
from bot.render.view import build_view
from bot.result import SearchResult


def render_text(
    result: SearchResult,
    zone: tzinfo,
    *,
    show_lines: bool = False,
    now: datetime | None = None,
    lang: Language = ENGLISH,
) -> str:
    """The whole answer as plain text for a terminal: the summary, then one story per mail."""
    _ = lang.gettext
    view = build_view(result, zone, now, lang=lang)
    out = [view.headline]
    if view.verdicts and len(view.verdicts) > 1:
        out.append("")
        out.extend(view.verdicts)
    for story in view.stories:
        out.extend(["", story.verdict])
        out.extend(story.lines)
        out.extend(f"   · {line}" for line in story.evidence)
        if show_lines:
            out.append("   " + _("log lines:"))
            out.extend(f"   | {line}" for line in story.raw)
    if view.diagnosis:
        out.extend(["", _("Likely reasons:")])
        out.extend(view.diagnosis)
    out.append("")
    out.extend([*view.footer, *view.coverage, *view.problems])
    return "\n".join(out) + "\n"
