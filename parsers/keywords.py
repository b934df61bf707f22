"""A cheap keyword test run before a case-insensitive regex: it may let through text the regex
then rejects, never the reverse.

Strategy: `re.IGNORECASE` matches an ASCII letter to a few other characters too: the dotted
capital İ (U+0130) and the dotless ı (U+0131) to i, the long ſ (U+017F) to s, the Kelvin sign
(U+212A) to k. `casefold` turns ſ into s and K into k already, but İ into "i" plus a combining
dot above (U+0307) and leaves ı alone; so the fold also maps ı to i and drops U+0307. Dropping
a character can only make a keyword appear, which keeps the test on the safe side.
"""

from __future__ import annotations

from collections.abc import Iterable


def fold(text: str) -> str:
    """`text` folded so that any spelling re.IGNORECASE would match contains the keyword."""
    return text.casefold().replace("\u0131", "i").replace("\u0307", "")


def mentions_any(text: str, words: Iterable[str]) -> bool:
    """Could a case-insensitive regex built from these (lower-case ASCII) words match `text`?"""
    folded = fold(text)
    return any(word in folded for word in words)
