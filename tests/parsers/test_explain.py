"""Plain-language meanings: every status, the DSN codes people meet, and who has to act."""

from __future__ import annotations

import pytest

from parsers.dsn import describe_dsn
from parsers.explain import explain_status
from parsers.models import Status


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("5.1.1", "mailbox does not exist"),
        ("5.1.6", "has moved"),
        ("5.2.2", "mailbox is full"),
        ("5.4.4", "no mail server"),
        ("5.7.1", "refused by policy"),
        ("4.4.1", "no answer"),
        ("4.4.2", "broke off"),
        ("4.7.1", "greylisting"),
        ("4.2.0", "try later"),
        ("4.4.7", "too long"),
        ("5.4.7", "too long"),
        ("5.9.9", "permanent failure"),  # unknown: by class
        ("4.3.99", "temporary failure (the receiving mail system)"),
    ],
)
def test_dsn_meanings(code: str, words: str) -> None:
    """Known codes have their own words; others are described by class and subject."""
    meaning = describe_dsn(code)
    assert meaning is not None
    assert words in meaning


def test_not_a_code() -> None:
    """Text that is not an enhanced status code has no meaning."""
    assert describe_dsn(None) is None
    assert describe_dsn("550") is None


@pytest.mark.parametrize("status", list(Status))
def test_every_status_is_explained(status: Status) -> None:
    """Every status of the vocabulary has a sentence and someone (or nobody) who acts."""
    text, who = explain_status(status, None, None)
    assert text.endswith(".")
    assert len(text) >= len("Delivered.")
    assert who


def test_who_acts_depends_on_the_code() -> None:
    """An unknown mailbox is the sender's to fix, a full one the recipient's, a block their admin's."""
    assert "sender" in explain_status(Status.BOUNCED, "5.1.1", None)[1]
    assert "recipient" in explain_status(Status.BOUNCED, "5.2.2", None)[1]
    assert "admin" in explain_status(Status.BOUNCED, "5.7.1", None)[1]
    assert explain_status(Status.SENT, "2.0.0", "mx[192.0.2.1]:25") == (
        "Delivered via mx.",
        "nobody",
    )
