"""postscreen(8) connection-level lines -> event fields.

Strategy: postscreen logs one line per test verdict, always naming the client as `[ip]:port`
after a verdict in capitals ("PREGREET", "DNSBL rank 3", "COMMAND TIME LIMIT"). The verdict
words and the client IP are all a trace needs: the IP makes the line findable by a client-IP
query, the verdict says why a client never reached smtpd. Its NOQUEUE rejects carry a queue-ID
prefix and are read like smtpd's (see `postfix`).

Samples (postscreen(8), and lines from real servers):
- ``CONNECT from [192.0.2.2]:59415 to [192.0.2.1]:25``
- ``PREGREET 14 after 0.08 from [192.0.2.2]:59415: EHLO ylmf-pc\\r\\n``
- ``DNSBL rank 3 for [192.0.2.3]:48119``
- ``HANGUP after 16 from [192.0.2.3]:48119 in tests after SMTP handshake``
- ``COMMAND TIME LIMIT from [192.0.2.77]:3608 after CONNECT``
- ``PASS NEW [192.0.2.2]:59415`` / ``DISCONNECT [192.0.2.2]:59415`` / ``DENYLISTED [192.0.2.9]:1``
"""

from __future__ import annotations

import re
from typing import Any

from parsers.models import EventKind

# "PREGREET 14 after 0.08 from [192.0.2.2]:59415: EHLO ylmf-pc\r\n"
_VERDICT = re.compile(
    r"(?P<verdict>[A-Z][A-Z-]*(?: [A-Z][A-Z-]*)*)(?P<middle>[^\[]*?)"
    r"\[(?P<ip>[0-9A-Fa-f:.]+)\]:(?P<port>\d+)(?P<tail>.*)$"
)

# What each verdict means, for a person who has never read postscreen(8).
_MEANING = {
    "CONNECT": "connected to postscreen",
    "PASS NEW": "passed postscreen's tests and was handed to smtpd",
    "PASS OLD": "passed postscreen (known good client) and was handed to smtpd",
    "PREGREET": "talked before the server's greeting (a spambot habit); postscreen refuses it",
    "DNSBL": "is listed in a DNS blocklist",
    "HANGUP": "hung up during postscreen's tests",
    "COMMAND TIME LIMIT": "was too slow to send a command",
    "COMMAND COUNT LIMIT": "sent too many commands",
    "COMMAND LENGTH LIMIT": "sent a command that was too long",
    "COMMAND PIPELINING": "sent commands without waiting for replies",
    "NON-SMTP COMMAND": "sent something that is not SMTP",
    "BARE NEWLINE": "sent lines ending in a bare newline",
    "BLACKLISTED": "is on postscreen's deny list",
    "DENYLISTED": "is on postscreen's deny list",
    "WHITELISTED": "is on postscreen's allow list",
    "ALLOWLISTED": "is on postscreen's allow list",
    "DISCONNECT": "disconnected",
}


def read_postscreen(text: str) -> dict[str, Any] | None:
    """Fields of one postscreen verdict line (kind SCREEN), or None when it is not one."""
    match = _VERDICT.match(text)
    if match is None:
        return None
    verdict = match["verdict"]
    if verdict.startswith("DNSBL"):
        verdict = "DNSBL"
    meaning = _MEANING.get(verdict)
    if meaning is None:
        return None
    return {
        "kind": EventKind.SCREEN,
        "action": verdict,
        "client_ip": match["ip"],
        "reason": f"the client {meaning}: {text}",
    }


def screen_meaning(verdict: str) -> str | None:
    """Plain words for a postscreen verdict ("PREGREET" -> "talked before ..."), if known."""
    return _MEANING.get(verdict)
