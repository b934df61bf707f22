"""Conformance: counts a Prometheus exporter derives from the same lines (digineo corpus)."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from parsers.models import EventKind
from parsers.postfix import parse_line
from tests.corpus import corpus_dir

pytestmark = pytest.mark.corpus


def _metric(text: str, name: str, labels: str) -> int:
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} (\d+)$", text, re.MULTILINE)
    assert match is not None, f"{name}{{{labels}}} is not in the expected metrics"
    return int(match.group(1))


def test_reject_counts_match_the_exporter() -> None:
    """NOQUEUE rejects by reply code equal the exporter's counter."""
    root = corpus_dir("digineo-postfix_exporter")
    metrics = (root / "mail.metrics").read_text(encoding="utf-8")
    events = [
        parse_line(line) for line in (root / "mail.log").read_text(encoding="utf-8").splitlines()
    ]
    rejects = Counter(
        str(e.reply_code)
        for e in events
        if e.kind is EventKind.REJECT and e.daemon == "smtpd" and e.queue_id is None
    )
    assert rejects == {
        "450": _metric(
            metrics, "postfix_smtpd_messages_rejected_total", 'code="450",name="postfix"'
        )
    }


def test_removed_count_matches_the_exporter() -> None:
    """qmgr `removed` lines of the instance named "postfix" equal the exporter's counter."""
    root = corpus_dir("digineo-postfix_exporter")
    metrics = (root / "mail.metrics").read_text(encoding="utf-8")
    events = [
        parse_line(line) for line in (root / "mail.log").read_text(encoding="utf-8").splitlines()
    ]
    removed = [e for e in events if e.kind is EventKind.REMOVED]
    main = [e for e in removed if e.program == "postfix/qmgr"]
    assert len(main) == _metric(metrics, "postfix_qmgr_messages_removed_total", 'name="postfix"')
    assert [e.program for e in removed if e not in main] == ["postfix-secondary/qmgr"]
