"""Delivery-side failures in plain words: what Postfix's reason text means.

Strategy: a deferral or bounce that Postfix itself wrote (no remote reply) has a fixed wording
in the smtp(8)/lmtp(8) client and the resolver; each pattern below quotes one real reason and
gives the sentence a person reads, and who has to act. The remote server's own replies are left
to the DSN code (see `dsn`).
"""

from __future__ import annotations

import re

from parsers.i18n import ENGLISH, N_, Translator
from parsers.keywords import mentions_any

SENDER_ADDRESS = N_("the sender: check the recipient's domain for typos")
THEIR_ADMIN_LATER = N_("nobody yet: Postfix retries; the recipient's mail admin if it persists")

# (pattern, sentence, who acts); the first that matches wins. Groups "peer"/"when" are optional.
_FAILURES: tuple[tuple[re.Pattern[str], str, str], ...] = (
    # "Host or domain name not found. Name service error for name=exmaple.com type=MX: Host not
    #  found, try again" -- the first sentence decides: the name does not exist
    (
        re.compile(r"Host or domain name not found", re.IGNORECASE),
        N_("The recipient's domain has no mail server in DNS (Host or domain name not found)."),
        SENDER_ADDRESS,
    ),
    # "Name service error for name=example.org type=MX: Host not found, try again"
    (
        re.compile(r"Name service error", re.IGNORECASE),
        N_("A DNS lookup for the recipient's domain failed (name service error)."),
        N_("us (the mail team: our resolver) or the recipient's mail admin (their DNS)"),
    ),
    # "mail for example.org loops back to myself"
    (
        re.compile(r"mail for (?P<peer>\S+) loops back to myself"),
        N_(
            "The mail server for {peer} is this server itself, but it is not set up to receive"
            " that domain (a mail loop)."
        ),
        N_("us (the mail team): mydestination / relay_domains / the domain's MX"),
    ),
    # "Hop count exceeded - possible mail loop" / "too many hops"
    (
        re.compile(r"too many hops|hop count exceeded", re.IGNORECASE),
        N_(
            "The mail went round in a loop between servers until Postfix stopped it"
            " (too many hops)."
        ),
        N_(
            "us (the mail team) and the recipient's mail admin (forwarding rules that point at"
            " each other)"
        ),
    ),
    # "Cannot start TLS: handshake failure" / "TLS is required, but our TLS engine is
    #  unavailable" / "lost connection with x[ip] while performing the TLS handshake"
    (
        re.compile(r"TLS handshake|handshake failure|Cannot start TLS|TLS is required", re.I),
        N_("The encrypted (TLS) connection to the receiving server could not be set up."),
        N_(
            "us (the mail team: our TLS settings) or the recipient's mail admin (their"
            " certificate or TLS settings)"
        ),
    ),
    # "lost connection with mx.example.org[203.0.113.9] while sending RCPT TO"
    (
        re.compile(r"lost connection with (?P<peer>\S+) while (?P<when>.+?)(?:\)|$)"),
        N_("The receiving server {peer} dropped the connection while we were {when}."),
        THEIR_ADMIN_LATER,
    ),
    # "conversation with mx.example.org[203.0.113.9] timed out while receiving the initial
    #  server greeting"
    (
        re.compile(r"conversation with (?P<peer>\S+) timed out while (?P<when>.+?)(?:\)|$)"),
        N_("The receiving server {peer} stopped answering (timed out) while we were {when}."),
        THEIR_ADMIN_LATER,
    ),
    # "connect to mx.example.org[203.0.113.9]:25: Connection refused"
    (
        re.compile(r"connect to (?P<peer>\S+?): Connection refused"),
        N_("The receiving server {peer} refused the connection (nothing listens, or a firewall)."),
        THEIR_ADMIN_LATER,
    ),
    # "connect to mx.example.org[203.0.113.9]:25: Connection timed out"
    (
        re.compile(r"connect to (?P<peer>\S+?): Connection timed out"),
        N_("The receiving server {peer} could not be reached (connection timed out)."),
        N_(
            "nobody yet: Postfix retries; us (the mail team: our network) or the recipient's"
            " mail admin"
        ),
    ),
)

# A word each pattern above cannot match without (case-folded): most reasons contain none, and
# a few substring tests say so faster than the patterns' searches.
_KEYWORDS = (
    "host or domain name not found",
    "name service error",
    "loops back to myself",
    "too many hops",
    "hop count exceeded",
    "handshake",
    "cannot start tls",
    "tls is required",
    "lost connection with",
    "conversation with",
    "connect to",
)


def describe_failure(reason: str | None, tr: Translator = ENGLISH) -> tuple[str, str] | None:
    """(plain sentence, who acts) for a failure reason Postfix itself wrote, else None. The
    peer and "while we were …" are Postfix's own words and stay as logged."""
    if not reason:
        return None
    if not mentions_any(reason, _KEYWORDS):
        return None
    for pattern, sentence, who in _FAILURES:
        match = pattern.search(reason)
        if match is not None:
            parts = {k: v for k, v in match.groupdict().items() if v is not None}
            return tr.gettext(sentence).format(**parts), tr.gettext(who)
    return None
