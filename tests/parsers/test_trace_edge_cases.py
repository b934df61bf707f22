"""Edge cases of grouping and final states, each from a reproduction of a real-log shape."""

from __future__ import annotations

from parsers.models import Status
from parsers.postfix import parse_line
from parsers.trace import group_messages


def _group(text: str):  # type: ignore[no-untyped-def]
    return group_messages([parse_line(line) for line in text.strip().splitlines()])


def test_rejected_whole_message_then_reused_id_is_two_messages() -> None:
    """A header-rejected message gets no `removed`; the ID's next client= line starts a new life."""
    messages = _group("""
May 13 10:00:00 mx1 postfix/smtpd[1]: 1039422050E: client=a[198.51.100.1]
May 13 10:00:00 mx1 postfix/cleanup[2]: 1039422050E: reject: header Subject: spam from a[198.51.100.1]; from=<spam@example.net> to=<r@example.org> proto=ESMTP helo=<a>: 5.7.1 no
May 13 15:00:00 mx1 postfix/smtpd[1]: 1039422050E: client=b[198.51.100.2]
May 13 15:00:00 mx1 postfix/qmgr[3]: 1039422050E: from=<good@example.net>, size=1, nrcpt=1 (queue active)
May 13 15:00:01 mx1 postfix/smtp[4]: 1039422050E: to=<r@example.org>, relay=mx[192.0.2.8]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)
May 13 15:00:01 mx1 postfix/qmgr[3]: 1039422050E: removed
""")
    assert [(m.sender, m.status) for m in messages] == [
        ("spam@example.net", Status.REJECTED),
        ("good@example.net", Status.SENT),
    ]


def test_held_then_released_to_an_alias_leaves_no_phantom_recipient() -> None:
    """The hold line names the alias; the deliveries name its members: the message is sent."""
    (message,) = _group("""
Nov 28 16:58:03 mx-a postfix/smtpd[1]: 32DB6220510: client=localhost[127.0.0.1]
Nov 28 16:58:03 mx-a postfix/cleanup[2]: 32DB6220510: hold: header Subject: x from localhost[127.0.0.1]; from=<s@example.net> to=<team@mx-a.test> proto=ESMTP helo=<c>: review
Nov 28 16:58:04 mx-a postfix/postsuper[3]: 32DB6220510: released from hold
Nov 28 16:58:04 mx-a postfix/qmgr[4]: 32DB6220510: from=<s@example.net>, size=466, nrcpt=1 (queue active)
Nov 28 16:58:04 mx-a postfix/local[5]: 32DB6220510: to=<alice@mx-a.test>, orig_to=<team@mx-a.test>, relay=local, delay=0.01, delays=0/0/0/0, dsn=2.0.0, status=sent (delivered to maildir)
Nov 28 16:58:04 mx-a postfix/local[5]: 32DB6220510: to=<bob@mx-a.test>, orig_to=<team@mx-a.test>, relay=local, delay=0.01, delays=0/0/0/0, dsn=2.0.0, status=sent (delivered to maildir)
Nov 28 16:58:04 mx-a postfix/qmgr[4]: 32DB6220510: removed
""")
    assert message.status is Status.SENT
    assert [(r.address, r.orig_to) for r in message.recipients] == [
        ("alice@mx-a.test", "team@mx-a.test"),
        ("bob@mx-a.test", "team@mx-a.test"),
    ]


def test_held_message_keeps_its_recipient() -> None:
    """Still on hold: the recipient the hold line names is shown as held."""
    (message,) = _group("""
Nov 28 16:58:03 mx-a postfix/smtpd[1]: 5A5A5A5A5A: client=localhost[127.0.0.1]
Nov 28 16:58:03 mx-a postfix/cleanup[2]: 5A5A5A5A5A: hold: header Subject: x from localhost[127.0.0.1]; from=<s@example.net> to=<hold@example.net> proto=ESMTP helo=<c>: review
""")
    assert [(r.address, r.status) for r in message.recipients] == [
        ("hold@example.net", Status.HELD)
    ]


def test_softbounce_is_a_deferral_with_the_servers_words() -> None:
    """status=SOFTBOUNCE (soft_bounce=yes) is deferred, keeping the DSN and the reply."""
    (message,) = _group("""
Oct 14 07:34:00 mx1 postfix/smtpd[1]: 4B6D11E01729: client=c[198.51.100.1]
Oct 14 07:34:03 mx1 postfix/smtp[2]: 4B6D11E01729: to=<v@example.com.br>, relay=mail.example.com.br[192.0.2.4]:25, delay=3, delays=0/0/0.5/2.5, dsn=4.7.1, status=SOFTBOUNCE (host mail.example.com.br[192.0.2.4] said: 501 5.7.1 refused (in reply to RCPT TO command))
""")
    (rcpt,) = message.recipients
    assert (rcpt.status, rcpt.postfix_status, rcpt.dsn) == (Status.DEFERRED, "SOFTBOUNCE", "4.7.1")
    assert (
        rcpt.reason
        == "host mail.example.com.br[192.0.2.4] said: 501 5.7.1 refused (in reply to RCPT TO command)"
    )


def test_postscreen_rejects_keep_their_client() -> None:
    """Unnamed clients (postscreen's `[ip]:port`) stay apart, each with its IP."""
    messages = _group("""
May 13 10:00:00 mx1 postfix/postscreen[1]: NOQUEUE: reject: RCPT from [198.51.100.7]:40001: 450 4.3.2 Service currently unavailable; from=<x@example.net>, to=<r@example.org>, proto=ESMTP, helo=<a>
May 13 12:00:00 mx1 postfix/postscreen[1]: NOQUEUE: reject: RCPT from [203.0.113.9]:40002: 450 4.3.2 Service currently unavailable; from=<x@example.net>, to=<r@example.org>, proto=ESMTP, helo=<a>
""")
    assert [m.client for m in messages] == ["unknown[198.51.100.7]", "unknown[203.0.113.9]"]


def test_ip_in_a_remote_reply_is_not_a_dsn() -> None:
    """In "host mx[1.2.3.4] said: 450 4.2.0 ...", the DSN is 4.2.0, not 2.3.4 from the IP."""
    event = parse_line(
        "May 13 10:00:00 mx1 postfix/smtp[1]: ABCDE12345: host mx[1.2.3.4] said: 450 4.2.0 try later (in reply to RCPT TO command)"
    )
    assert event.dsn == "4.2.0"
