"""Filter, milter and delivery-failure lines written by real servers (public corpus)."""

from __future__ import annotations

import pytest
import yaml

from parsers.explain import explain_recipient
from parsers.models import EventKind, Status
from parsers.postfix import parse_message
from parsers.trace import group_messages
from tests.corpus import corpus_dir
from tests.parsers.test_lightmeter_corpus import _events

pytestmark = pytest.mark.corpus


def _grok_with(text: str) -> list[str]:
    found = []
    for path in sorted((corpus_dir() / "postfix-grok-patterns").glob("*.yaml")):
        data = yaml.safe_load(path.read_text()).get("data", "")
        if isinstance(data, str) and text in data:
            found.append(data)
    return found


def test_proxy_lines_without_prefix_are_read() -> None:
    """Every proxy-accept/proxy-reject line of the corpus (none has a queue-ID prefix) is read
    with its sender, recipient and verdict; the accept names the queue ID it was queued as."""
    lines = _grok_with("proxy-")
    assert len(lines) >= 3
    for line in lines:
        fields = parse_message("smtpd", line)
        assert fields.get("queue_id") is None
        assert fields["recipient"] == "user2@example2.com"
        assert fields["smtp_stage"] == "END-OF-MESSAGE"
        if line.startswith("proxy-accept"):
            assert fields["kind"] is EventKind.PROXY_ACCEPT
            assert fields["new_queue_id"] == "DF66E940333"
        else:
            assert fields["kind"] is EventKind.REJECT


def test_spam_proxy_reject_keeps_the_filter_words() -> None:
    """A proxy-reject's reply is the filter's own words and DSN."""
    (line,) = [x for x in _grok_with("proxy-reject") if "spam" in x]
    fields = parse_message("smtpd", line)
    assert fields["dsn"] == "5.7.0"
    assert fields["reason"].startswith("Reject, contact postmaster@example.com")


@pytest.mark.parametrize(
    ("needle", "words"),
    [
        ("while sending RCPT TO)", "dropped the connection while we were sending RCPT TO"),
        ("timed out while receiving", "stopped answering (timed out)"),
    ],
)
def test_delivery_failures_in_plain_words(needle: str, words: str) -> None:
    """A deferral Postfix describes in its fixed words is explained in plain words."""
    line = next(x for x in _grok_with(needle) if "lost" in x or "timed out" in x)
    fields = parse_message("smtp", line)
    text, _ = explain_recipient(Status.DEFERRED, "4.4.2", None, reason=fields.get("reason"))
    assert words in text


def test_amavis_hop_is_handed_to_the_content_filter() -> None:
    """lightmeter's amavisd-new hop: the delivery to 127.0.0.1:10032 that queued a copy is
    'handed to the content filter', not 'delivered', and links to the re-injected copy."""
    root = corpus_dir() / "lightmeter-controlcenter" / "individual_files"
    messages = {m.queue_id: m for m in group_messages(_events(root / "5_zimbra_amavisd.log"))}
    handed = messages["218BEDC28EC"].recipients[0]
    assert handed.status is Status.SENT
    assert handed.content_filter == "127.0.0.1[127.0.0.1]:10032"
    assert handed.explanation.startswith("Handed to the content filter at 127.0.0.1:10032")
    assert messages["218BEDC28EC"].links[0].queue_id == "33DE0DC24C3"
    final = messages["33DE0DC24C3"].recipients[0]
    assert final.content_filter is None
    assert final.explanation == "Delivered via gmail-smtp-in.l.google.com."
