"""Enhanced mail system status codes (RFC 3463, IANA registry) in plain words.

Strategy: an exact table for the codes people meet in ops channels, then the code's class
(2 success, 4 temporary, 5 permanent) and subject (X.1 address, X.2 mailbox, ... X.7 policy)
for anything else, so every code gets a meaning. X.4.7 is "delivery time expired" in any class.
"""

from __future__ import annotations

import re

from parsers.i18n import ENGLISH, N_, Translator

_EXACT: dict[str, str] = {
    "2.0.0": N_("accepted"),
    "2.1.5": N_("recipient address is valid"),
    "2.6.0": N_("accepted"),
    "4.1.1": N_("the recipient's mailbox is unknown right now (temporary)"),
    "4.1.8": N_("the sender's domain could not be verified (temporary DNS trouble)"),
    "4.2.0": N_("the receiving server asked us to try later (often greylisting)"),
    "4.2.1": N_("the recipient's mailbox is temporarily disabled"),
    "4.2.2": N_("the recipient's mailbox is full (temporary)"),
    "4.3.0": N_("the receiving mail system had a temporary problem"),
    "4.3.2": N_("the receiving system is not accepting mail right now"),
    "4.3.5": N_("the receiving system is misconfigured (temporary)"),
    "4.4.1": N_("no answer from the receiving server (connection refused or timed out)"),
    "4.4.2": N_("the connection to the receiving server broke off"),
    "4.4.3": N_("the receiving server's name could not be looked up (DNS failure)"),
    "4.4.4": N_("no route to the receiving domain (temporary)"),
    "4.4.7": N_("the message stayed in the queue too long"),
    "4.5.0": N_("a protocol problem with the receiving server (temporary)"),
    "4.7.0": N_("refused for now by the receiving server's policy"),
    "4.7.1": N_("refused for now by policy (greylisting, rate limit or reputation)"),
    "5.0.0": N_("permanently refused, without a more specific reason"),
    "5.1.0": N_("the address was refused"),
    "5.1.1": N_("the recipient's mailbox does not exist"),
    "5.1.2": N_("the recipient's domain does not exist or accepts no mail"),
    "5.1.3": N_("the address is not valid (syntax)"),
    "5.1.6": N_("the mailbox has moved and left no forwarding address"),
    "5.1.7": N_("the sender's address is not valid"),
    "5.1.8": N_("the sender's domain is not accepted"),
    "5.1.10": N_("the recipient's domain publishes a null MX: it accepts no mail"),
    "5.2.0": N_("the recipient's mailbox is unavailable"),
    "5.2.1": N_("the recipient's mailbox is disabled"),
    "5.2.2": N_("the recipient's mailbox is full"),
    "5.2.3": N_("the message is too large for the recipient's mailbox"),
    "5.3.0": N_("the receiving mail system refused it"),
    "5.3.4": N_("the message is larger than the receiving system accepts"),
    "5.4.0": N_("the message could not be routed"),
    "5.4.4": N_("the recipient's domain has no mail server (no MX or A record)"),
    "5.4.6": N_("a mail routing loop was detected"),
    "5.4.7": N_("the message stayed in the queue too long and was returned"),
    "5.5.0": N_("a protocol error with the receiving server"),
    "5.5.2": N_("the receiving server did not understand a command (syntax)"),
    "5.6.0": N_("the content was refused"),
    "5.7.0": N_("refused by the receiving server's security policy"),
    "5.7.1": N_("refused by policy: not allowed to relay, blocked as spam, or on a blocklist"),
    "5.7.8": N_("authentication failed"),
    "5.7.9": N_("the authentication mechanism is too weak"),
    "5.7.23": N_("SPF check failed: our server is not allowed to send for the sender's domain"),
    "5.7.25": N_("the sending server's IP address has no valid reverse DNS"),
    "5.7.26": N_("authentication checks failed (DMARC, SPF or DKIM)"),
    "5.7.27": N_("the sender's domain publishes a null MX"),
}

_CLASS = {"2": N_("success"), "4": N_("temporary failure"), "5": "permanent failure"}
_SUBJECT = {
    "0": N_("other or undefined"),
    "1": N_("addressing"),
    "2": N_("the recipient's mailbox"),
    "3": N_("the receiving mail system"),
    "4": N_("network and routing"),
    "5": N_("mail protocol"),
    "6": N_("message content"),
    "7": N_("security or policy"),
}
_CODE = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})$")


def describe_dsn(code: str | None, tr: Translator = ENGLISH) -> str | None:
    """Plain-language meaning of an enhanced status code, or None when there is no code."""
    _ = tr.gettext
    if not code:
        return None
    match = _CODE.match(code)
    if match is None:
        return None
    if code in _EXACT:
        return _(_EXACT[code])
    klass, subject, detail = match.groups()
    if subject == "4" and detail == "7":
        return _("the message stayed in the queue too long")
    subject_words = _(_SUBJECT[subject]) if subject in _SUBJECT else _("unknown subject")
    return _("{klass} ({subject})").format(klass=_(_CLASS[klass]), subject=subject_words)
