"""How a run of `mailtrace` ends: its exit statuses (the table is in `bot.cli`), and the text
of the one line on stderr that says why it failed.
"""

from __future__ import annotations

EXIT_FOUND, EXIT_NOTHING, EXIT_USAGE, EXIT_SERVERS = 0, 1, 2, 3
EXIT_PENDING = 4
EXIT_INTERRUPTED = 130


def printable(text: str, *, keep_lines: bool = True) -> str:
    """`text` with any control character shown escaped (an argument holding a \\r or \\x85 must
    not split or overwrite a line of the message); its line breaks kept unless `keep_lines` is
    False (a one-line message that quotes a path or value the user gave)."""
    lines = text.split("\n") if keep_lines else [text]
    return "\n".join(
        "".join(c if c.isprintable() else repr(c)[1:-1] for c in line) for line in lines
    )
