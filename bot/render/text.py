"""Terminal text: the same content as the Slack thread, top to bottom."""

from __future__ import annotations

from datetime import tzinfo

from bot.render.view import build_view
from bot.result import SearchResult


def render_text(result: SearchResult, zone: tzinfo, *, show_lines: bool = False) -> str:
    """The whole answer as plain text for a terminal."""
    view = build_view(result, zone)
    out = [view.headline]
    if view.verdicts:
        out.append("")
        out.extend(view.verdicts)
    for message in view.messages:
        out.extend(["", f"── {message.title} " + "─" * max(4, 60 - len(message.title))])
        out.extend(message.lines)
        if show_lines:
            out.append("   log lines:")
            out.extend(f"   | {line}" for line in message.raw)
    if view.diagnosis:
        out.extend(["", "Likely reasons:"])
        out.extend(view.diagnosis)
    out.append("")
    out.extend(view.footer)
    return "\n".join(out) + "\n"
