"""Property tests: parsing never raises; grouping does not depend on how messages interleave."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.postfix import parse_line
from parsers.trace import group_messages

PREFIXES = [
    "",
    "May 13 10:00:12 mx1 postfix/smtpd[1]: ",
    "2024-05-13T10:00:12+02:00 mx1 postfix/smtp[2]: ",
    "Jan 01 00:00:00 mx postfix/cleanup[3]: 4104E3D: ",
    "May 13 10:00:12 mx1 postfix/qmgr[1]: NOQUEUE: reject: ",
    '{"MESSAGE": ',
]


@settings(max_examples=400, deadline=None)
@given(prefix=st.sampled_from(PREFIXES), body=st.text(max_size=300))
def test_parse_line_never_raises(prefix: str, body: str) -> None:
    """Any text after any envelope parses into an event that keeps the raw line."""
    line = prefix + body
    event = parse_line(line)
    assert event.raw == line.rstrip("\r\n")


def _message_lines(qid: str, n: int, minute: int) -> list[str]:
    stamp = f"May 13 10:{minute:02d}:{{:02d}} mx postfix/{{}}[1]: {qid}: {{}}"
    return [
        stamp.format(0, "smtpd", f"client=c{n}.example[192.0.2.{n}]"),
        stamp.format(1, "cleanup", f"message-id=<{n}@example>"),
        stamp.format(2, "qmgr", f"from=<s{n}@example.net>, size=10, nrcpt=1 (queue active)"),
        stamp.format(
            3,
            "smtp",
            f"to=<r{n}@example.org>, relay=mx.example.org[198.51.100.1]:25, delay=1, "
            f"delays=0/0/0/1, dsn={'2.0.0' if n % 2 else '5.1.1'}, "
            f"status={'sent (250 ok)' if n % 2 else 'bounced (550 5.1.1 no such user)'}",
        ),
        stamp.format(4, "qmgr", "removed"),
    ]


@settings(max_examples=60, deadline=None)
@given(count=st.integers(min_value=1, max_value=8), seed=st.integers(0, 10_000))
def test_grouping_ignores_interleaving(count: int, seed: int) -> None:
    """Shuffling whole messages' lines together (each keeping its own order) gives the same trace."""
    per_message = [_message_lines(f"{0xA0000 + n:X}", n, n % 3) for n in range(count)]
    ordered = [parse_line(line) for lines in per_message for line in lines]
    rng = random.Random(seed)
    queues = [list(lines) for lines in per_message]
    mixed_lines = []
    while any(queues):
        queue = rng.choice([q for q in queues if q])
        mixed_lines.append(queue.pop(0))
    mixed = [parse_line(line) for line in mixed_lines]
    key = lambda m: (m.host, m.queue_id)  # noqa: E731
    assert sorted(group_messages(ordered), key=key) == sorted(group_messages(mixed), key=key)
