"""Pass 1's hits ranked while they stream: the same as ranking them all at the end."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bot.earliest import EarliestMessages
from parsers.models import LogEvent
from parsers.postfix import parse_line

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "postfix"
LOG = FIXTURES / "two-hosts" / "mx-a" / "mail.log"


def _events() -> list[LogEvent]:
    """Every line of a log written by a real Postfix, in file (time) order."""
    return [parse_line(line) for line in LOG.read_text(encoding="utf-8").splitlines()]


def _ranked_at_end(hits: list[LogEvent], limit: int) -> tuple[list[LogEvent], int]:
    """The plain definition: the first `limit` queue IDs by their earliest hit, ties by the ID
    seen first; pre-queue lines always; and how many IDs there were."""
    first: dict[str, float] = {}
    for e in hits:
        if e.queue_id is not None:
            stamp = e.timestamp.timestamp() if e.timestamp else float("-inf")
            first[e.queue_id] = min(first.get(e.queue_id, stamp), stamp)
    keep = set(sorted(first, key=first.__getitem__)[:limit])
    return [e for e in hits if e.queue_id is None or e.queue_id in keep], len(first)


def _streamed(hits: list[LogEvent], limit: int) -> EarliestMessages:
    found = EarliestMessages(limit)
    for e in hits:
        found.add(e)
    return found


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 8, 1000])
def test_in_time_order_keeps_the_same_hits(limit: int) -> None:
    """Lines in time order: the streamed hits and ID count equal ranking everything at the end."""
    events = _events()
    assert sum(e.queue_id is not None for e in events) > 20  # the log has messages to rank
    found = _streamed(events, limit)
    assert found.complete
    assert (found.hits(), found.found) == _ranked_at_end(events, limit)


@pytest.mark.parametrize("seed", range(20))
def test_out_of_order_is_either_the_same_or_says_so(seed: int) -> None:
    """Shuffled lines: the result equals the end ranking unless `complete` says it cannot."""
    events = _events()
    random.Random(seed).shuffle(events)
    for limit in (1, 3, 6):
        found = _streamed(events, limit)
        hits, count = _ranked_at_end(events, limit)
        assert found.found == count
        if found.complete:
            assert found.hits() == hits


def test_reversed_lines_are_noticed() -> None:
    """Lines newest first: an ID dropped early comes back with an older line, and it is noticed."""
    events = list(reversed(_events()))
    found = _streamed(events, 2)
    assert not found.complete
    assert _streamed(events, 10_000).complete  # nothing dropped, nothing to notice
