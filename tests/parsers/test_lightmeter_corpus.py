"""Conformance: the lightmeter scenario logs parse without error and group sensibly."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from parsers.models import EventKind, LinkKind, LogEvent, Message, Status
from parsers.postfix import parse_line
from parsers.trace import group_messages
from tests.corpus import corpus_dir

pytestmark = pytest.mark.corpus


def _events(path: Path, source: str | None = None) -> list[LogEvent]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
        return [parse_line(line, source=source, path=str(path)) for line in handle]


def _by_id(messages: list[Message]) -> dict[str, Message]:
    return {m.queue_id: m for m in messages if m.queue_id}


def test_every_scenario_and_the_rotated_set_parse_and_group() -> None:
    """Every scenario file and every rotated/gzipped file parses and groups without an exception."""
    root = corpus_dir("lightmeter-controlcenter")
    paths = sorted(root.glob("individual_files/*.log")) + sorted(
        root.glob("complete/logs_sample/*")
    )
    assert len(paths) >= 40
    for path in paths:
        events = _events(path)
        assert events, path.name
        group_messages(events)


def test_two_server_relay_links_next_hop() -> None:
    """The message relayed from lightmetermail continues on mail2 as F27E789349, and is sent there."""
    root = corpus_dir("lightmeter-controlcenter", "individual_files")
    events = _events(root / "29_inbound_relayed_message_server_1.log", "lightmetermail")
    events += _events(root / "29_inbound_relayed_message_server_2.log", "mail2")

    def resolve(relay: str, host: str) -> str | None:
        return "mail2" if relay.startswith("mail2.example.com[") else None

    found = _by_id(group_messages(events, resolve))
    first, second = found["670FCA58C8"], found["F27E789349"]
    assert first.host == "lightmetermail"
    assert second.host == "mail2"
    hop = [link for link in first.links if link.kind is LinkKind.NEXT_HOP]
    assert [(link.host, link.queue_id) for link in hop] == [("mail2", "F27E789349")]
    assert first.status is Status.SENT
    assert second.status is Status.SENT
    assert second.recipients[0].relay == "gmail-smtp-in.l.google.com[44.44.44.44]:25"


def test_expired_message_returns_to_sender() -> None:
    """The expired scenario ends expired, names the bounce notice it caused, and that notice is delivered."""
    root = corpus_dir("lightmeter-controlcenter", "individual_files")
    found = _by_id(group_messages(_events(root / "18_expired.log")))
    expired = found["23EBE3D5C0"]
    assert expired.status is Status.EXPIRED
    assert [r.status for r in expired.recipients] == [Status.EXPIRED]
    assert any(
        link.kind is LinkKind.BOUNCE and link.queue_id == "A7E673C067" for link in expired.links
    )
    notice = found["A7E673C067"]
    assert notice.sender == ""
    assert notice.status is Status.SENT


def test_bounce_and_partial_bounce() -> None:
    """Of five recipients three bounce with their DSNs and two are sent; the headline is bounced."""
    root = corpus_dir("lightmeter-controlcenter", "individual_files")
    found = _by_id(group_messages(_events(root / "2_multiple_recipients_some_bounces.log")))
    message = found["1310930001DB"]
    assert message.status is Status.BOUNCED
    states = {r.address: (r.status, r.dsn) for r in message.recipients}
    assert states["recipient1@dst3.example.com"] == (Status.BOUNCED, "5.1.1")
    assert states["recipient1@dst4.example.com"] == (Status.BOUNCED, "5.7.1")
    assert states["recipient1@dst1.example.com"] == (Status.SENT, "2.0.0")
    assert message.summary == "5 recipients: 3 bounced, 2 sent"


def test_deferred_then_retried() -> None:
    """A deferred recipient counts its attempts and ends in its last state."""
    root = corpus_dir("lightmeter-controlcenter", "individual_files")
    messages = group_messages(_events(root / "6_deferred_message_retry.log"))
    retried = [r for m in messages for r in m.recipients if r.attempts > 1]
    assert retried, "the scenario retries a deferred delivery"
    for r in retried:
        assert r.status in (Status.SENT, Status.DEFERRED, Status.BOUNCED)


def test_queue_id_reuse_makes_separate_messages() -> None:
    """A queue ID used again after `removed` starts a new message instead of merging into the old one."""
    root = corpus_dir("lightmeter-controlcenter", "individual_files")
    messages = group_messages(_events(root / "14_reuse_of_queueid.log"))
    ids = [m.queue_id for m in messages]
    reused = {qid for qid in ids if ids.count(qid) > 1}
    assert reused, "the scenario reuses at least one queue ID"
    for qid in reused:
        lives = [m for m in messages if m.queue_id == qid]
        removed = [sum(1 for line in m.lines if line.endswith(f"{qid}: removed")) for m in lives]
        assert all(count <= 1 for count in removed)


def test_content_filter_reinjection_links_both_ways() -> None:
    """The amavis hop: the re-injected copy names its original, and the original names the copy."""
    root = corpus_dir("lightmeter-controlcenter", "individual_files")
    found = _by_id(group_messages(_events(root / "8_weird_log_file.log")))
    copy = found["ED01244770"]
    assert (LinkKind.PREVIOUS_HOP, "4F5C64474F") in {(k.kind, k.queue_id) for k in copy.links}
    original = found["4F5C64474F"]
    assert (LinkKind.REINJECTED, "ED01244770") in {(k.kind, k.queue_id) for k in original.links}


def test_milter_reject_after_queueing_is_rejected() -> None:
    """A milter-reject at end of message rejects the whole queued message."""
    root = corpus_dir("lightmeter-controlcenter", "individual_files")
    messages = group_messages(_events(root / "15_milter-reject.log"))
    assert [m.status for m in messages] == [Status.REJECTED]
    assert messages[0].recipients[0].dsn == "4.7.1"


def test_split_line_degrades_gracefully() -> None:
    """Lines without an envelope (a split line) stay as unparsed raw lines, never an exception."""
    root = corpus_dir("lightmeter-controlcenter", "individual_files")
    path = root / "16_corrupted_messageid.log"
    events = _events(path)
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    assert any(e.kind is EventKind.UNPARSED for e in events)
    assert [e.raw for e in events] == lines


def test_repeated_pre_queue_refusals_are_one_entry() -> None:
    """The same NOQUEUE refusal repeated by a retrying client is one entry counting the attempts."""
    line = (
        "May 13 10:0{m}:00 mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from c.example[192.0.2.9]: "
        "450 4.2.0 <r@example.org>: Recipient address rejected: try later; "
        "from=<s@example.net> to=<r@example.org> proto=ESMTP helo=<c>"
    )
    events = [parse_line(line.format(m=m)) for m in range(3)]
    other = parse_line(line.format(m=5).replace("c.example[192.0.2.9]", "d.example[192.0.2.10]"))
    messages = group_messages([*events, other])
    assert [(m.client, m.recipients[0].attempts) for m in messages] == [
        ("c.example[192.0.2.9]", 3),
        ("d.example[192.0.2.10]", 1),
    ]
    assert len(messages[0].lines) == 3
