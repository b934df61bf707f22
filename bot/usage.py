"""The query grammar as a person reads it: the usage lines and the examples.

Strategy: plain text in the reader's language, kept apart from the parser (bot/query.py) so
that `mailtrace --help` and a usage error show it without importing pydantic or the Postfix
parsers.
"""

from __future__ import annotations

from parsers.i18n import ENGLISH, Translator

EXAMPLES = (
    "/mailtrace sender2@example.net 2024-05-13",
    "/mailtrace @example.org yesterday 14:30",
    "/mailtrace 4BcD1x2y3z4Q5r6 today",
    "/mailtrace <20240513.abc@mail.example.net>",
    "/mailtrace 203.0.113.7 2024-05-13 on mx1",
    "/mailtrace sender2@example.net 5月13日 午後4時",
    "/mailtrace @example.org 昨日〜今日",
)


def usage(tr: Translator = ENGLISH) -> str:
    """The grammar in a few lines, with examples, in the reader's language."""
    _ = tr.gettext
    return (
        _("Usage: /mailtrace TARGET [DATE] [TIME] [on SERVER]")
        + "\n"
        + _(
            "TARGET is an address, @domain, queue ID, <message-id> or client IP; DATE is "
            "2024-05-13, 2024/5/13, 5/13, 5月13日, today (今日), yesterday (昨日) or a range "
            "DATE~DATE; TIME is 16:03, 4pm, 16時 or 午後4時."
        )
        + "\n"
        + _("Examples:")
        + "\n"
        + "\n".join(f"  {e}" for e in EXAMPLES)
    )


def example(tr: Translator = ENGLISH) -> str:
    return tr.gettext("Example: {example}").format(example=EXAMPLES[0])
