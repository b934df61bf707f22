"""Conformance: envelopes (time, tag variants) and rejects of the fail2ban Postfix samples."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from parsers.envelope import YearGuess
from parsers.models import EventKind
from parsers.postfix import parse_line
from tests.corpus import corpus_dir

pytestmark = pytest.mark.corpus


def _samples() -> list[tuple[dict[str, object], str]]:
    lines = (corpus_dir("fail2ban") / "postfix.log").read_text(encoding="utf-8").splitlines()
    out = []
    for i, line in enumerate(lines):
        if line.startswith("# failJSON:") and i + 1 < len(lines):
            expected = json.loads(line.split(":", 1)[1])
            if "time" in expected:
                out.append((expected, lines[i + 1]))
    return out


def test_every_sample_time_and_daemon() -> None:
    """Every sample's timestamp equals fail2ban's expected time, and the daemon is after the last '/'."""
    samples = _samples()
    assert len(samples) >= 50
    for expected, line in samples:
        want = datetime.strptime(str(expected["time"]), "%Y-%m-%dT%H:%M:%S")  # "2005-03-7T..." too
        event = parse_line(line, years=YearGuess(want, fixed=want.year))
        assert event.timestamp is not None, line
        assert event.timestamp.replace(tzinfo=None) == want, line
        assert event.program is not None
        assert event.program.startswith("postfix"), line
        assert event.daemon == event.program.rsplit("/", 1)[-1]


def test_rejects_name_the_client_fail2ban_expects() -> None:
    """Every sample read as a reject or connection names the client IP fail2ban extracts."""
    checked = 0
    for expected, line in _samples():
        event = parse_line(line)
        kinds = (EventKind.REJECT, EventKind.CONNECT, EventKind.DISCONNECT)
        if event.kind in kinds and expected.get("host"):
            assert event.client_ip == expected["host"], line
            checked += 1
    assert checked >= 25


def test_noqueue_rejects_have_no_queue_id_and_a_code() -> None:
    """NOQUEUE rejects carry no queue ID, and a reply code and DSN where the line has them."""
    rejects = [parse_line(line) for _, line in _samples() if "NOQUEUE: reject:" in line]
    assert len(rejects) >= 20
    for event in rejects:
        assert event.kind is EventKind.REJECT
        assert event.queue_id is None
        assert event.reply_code is not None, event.raw
