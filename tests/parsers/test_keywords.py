"""The keyword pre-checks never skip a reply or reason their case-insensitive regexes match."""

from __future__ import annotations

import re
import string

from parsers.failures import describe_failure
from parsers.filters import filter_verdict
from parsers.keywords import fold, mentions_any


def test_every_character_ignorecase_takes_for_an_ascii_letter_folds_to_it() -> None:
    """Each character of the Basic Multilingual Plane that re.IGNORECASE matches to an ASCII
    letter folds to a text holding that letter (İ, ı, ſ and the Kelvin sign among them)."""
    odd = []
    for code in range(0x10000):
        char = chr(code)
        if char in string.ascii_letters or not re.fullmatch("[a-z]", char, re.IGNORECASE):
            continue
        for letter in string.ascii_lowercase:
            if re.fullmatch(letter, char, re.IGNORECASE) and letter not in fold(char):
                odd.append((hex(code), letter))
    assert odd == []
    # the ones that exist, so the loop above is not vacuous
    assert {fold(c) for c in "\u0130\u0131\u017f\u212a"} == {"i", "s", "k"}


def test_dotted_capital_i_in_a_filter_verdict_or_failure_reason_still_matches() -> None:
    """Replies spelled with İ (as re.IGNORECASE reads them) get the same verdict and sentence
    as their ASCII spelling: the pre-check does not skip them."""
    assert filter_verdict("554 5.7.0 Rejected: v\u0130rus") == "virus"
    assert filter_verdict("250 2.7.0 Ok, d\u0130scarded") == "discarded"
    plain = describe_failure("Host or domain name not found. Name service error")
    dotted = describe_failure("Host or doma\u0130n name not found. Name service error")
    assert plain is not None
    assert dotted == plain


def test_text_without_any_keyword_is_skipped() -> None:
    """The pre-check says no when no spelling of any keyword is there."""
    assert not mentions_any("250 2.0.0 Ok: queued as 4jcGgY54QpzJbJl", ("virus", "spam"))
    assert mentions_any("SPAM detected", ("spam",))
