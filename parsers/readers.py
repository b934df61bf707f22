"""Postfix message texts -> event fields: what follows "postfix/<daemon>[pid]: ".

Strategy: `parse_message` takes the queue ID in front of the text (or NOQUEUE), then hands the
rest to the reader for what the text starts with. Readers are small functions that return a dict
of fields, or None for "not mine"; the first that answers wins, and a text nobody reads is an
OTHER event. Nothing here raises on odd input: a truncated text loses its tail, never the line.

Formats are those of the Postfix daemons' own logging (see postconf(5) and each daemon's manual);
each regex below carries one real sample line in its comment.
"""

from __future__ import annotations

import re
from typing import Any

from parsers.models import EventKind
from parsers.postscreen import read_postscreen

# Short IDs are hex (e.g. "4104E3D"); long IDs (enable_long_queue_ids) mix case and digits
# (e.g. "48rT2v1hQrz1J0N"). Some how-tos use made-up IDs such as "BCDEFGHIJKL", so upper-case
# letters beyond hex are accepted too. Lower-case words ("warning", "statistics") never are.
_QID_PREFIX = re.compile(r"(?P<qid>NOQUEUE|[0-9A-Za-z]{5,24}): ")


def is_queue_id(token: str) -> bool:
    """True when `token` looks like a Postfix queue ID (short, long or how-to style)."""
    if not 5 <= len(token) <= 24 or not token.isalnum() or not token.isascii():
        return False
    # (alphanumeric ASCII from here: "not all letters" means "has a digit", and the reverse)
    if token.isupper() or token.isdigit():  # "4104E3D", "BCDEFGHIJKL"
        return len(token) >= 8 or not token.isalpha()
    # long queue IDs: mixed case, always with digits in the time-stamp part
    return len(token) >= 12 and not token.isalpha() and not token.isdigit()


# "<a@b>" addresses and "key=value" pairs of delivery lines:
# "to=<admin@example.com>, relay=127.0.0.1[127.0.0.1]:2525, delay=3.6, delays=0.2/0.02/0.04/3.3,
#  dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 153053D)"
_KV = re.compile(r"(?P<key>[a-z_]+)=(?P<value><[^>]*>?|[^,\s]*)")
_STATUS = re.compile(r"status=(?P<status>[A-Za-z-]+)(?: \((?P<reason>.*?)\)?)?$")

# "client=061238241086.static.ctinets.com[61.238.241.86]"
# "client=localhost[127.0.0.1]:41276, orig_queue_id=9B3D1E8, orig_client=mx[1.2.3.4]"
_CLIENT_ADDR = re.compile(r"(?P<host>[^\s\[\],]*)\[(?P<ip>[^\]]*)\]")

# "NOQUEUE: reject: RCPT from x[1.2.3.4]: 550 5.1.1 <a@b>: Recipient address rejected: ...;
#  from=<s@x> to=<a@b> proto=ESMTP helo=<h>"
# "4104E3D: milter-reject: END-OF-MESSAGE from x[1.2.3.4]: 5.7.1 Blocked by SpamAssassin; ..."
# "0F5383D: hold: header Subject: hold me from localhost[127.0.0.1]; from=<a> to=<b> ...: why"
_ACTION = re.compile(
    r"(?P<action>reject_warning|reject|milter-reject|milter-discard|milter-hold|"
    r"milter-header-[a-z]+|milter-body-[a-z]+|discard|hold|filter|redirect|warning|info|"
    r"prepend|replace|strip|bcc|proxy-reject|proxy-accept): (?P<rest>.*)$"
)
_REPLY = re.compile(r"(?:(?P<code>[245]\d\d)[ -])?(?P<dsn>[245]\.\d{1,3}\.\d{1,3})?\s*")
_DSN = re.compile(r"\b(?P<dsn>[245]\.\d{1,3}\.\d{1,3})\b")
_SAID_DSN = re.compile(r"said: [245]\d\d[ -](?P<dsn>[245]\.\d{1,3}\.\d{1,3})\b")

# "sender non-delivery notification: 3F6A4E8" (also delay, delivery status, postmaster)
_NOTICE = re.compile(r"(?P<notice>(?:sender|postmaster) [a-z -]+ notification): (?P<qid>\S+)$")
_QUEUED_AS = re.compile(r"\bqueued as (?P<qid>[0-9A-Za-z]{5,20})\b")
_FORWARDED_AS = re.compile(r"\bforwarded as (?P<qid>[0-9A-Za-z]{5,20})\b")
_LEVEL_PREFIXES = ("warning: ", "error: ", "fatal: ", "panic: ", "info: ")

# "connect from mx.example.org[203.0.113.7]" / "disconnect from unknown[unknown] commands=0/0"
_CONNECT = re.compile(r"(?P<kind>connect|disconnect) from " + _CLIENT_ADDR.pattern)


def parse_message(daemon: str, text: str) -> dict[str, Any]:
    """Read the message part of a Postfix line (after "postfix/<daemon>[pid]: ") into fields."""
    level = None
    if text.startswith(_LEVEL_PREFIXES):
        level, text = text.split(": ", 1)
    match = _QID_PREFIX.match(text)
    if match is None or not (match["qid"] == "NOQUEUE" or is_queue_id(match["qid"])):
        fields = (
            _read_connection(text)
            or _read_unqueued_action(daemon, text)
            or (read_postscreen(text) if daemon == "postscreen" else None)
            or {"kind": EventKind.OTHER}
        )
        fields.setdefault("text", text)
        if level:
            fields["level"] = level
        return fields
    qid = match["qid"]
    rest = text[match.end() :]
    fields = _read_queue_line(daemon, rest) or {"kind": EventKind.OTHER}
    fields.setdefault("text", rest)
    if qid != "NOQUEUE":
        fields["queue_id"] = qid
    if level and "level" not in fields:
        fields["level"] = level
    return fields


def _read_connection(text: str) -> dict[str, Any] | None:
    match = _CONNECT.match(text)
    if match is None:
        return None
    kind = EventKind.CONNECT if match["kind"] == "connect" else EventKind.DISCONNECT
    return {"kind": kind, "client_host": match["host"] or None, "client_ip": match["ip"]}


def _read_unqueued_action(daemon: str, text: str) -> dict[str, Any] | None:
    # A before-queue filter's verdict is often logged with neither NOQUEUE nor a queue ID:
    # "proxy-reject: END-OF-MESSAGE: 554 5.7.1 Rejected for policy reasons; from=<a@x> to=<b@y>
    #  proto=ESMTP helo=<h>"; milters' and smtpd's actions always carry one, but accept both.
    if not text.startswith(("proxy-", "milter-", "reject: ", "discard: ", "hold: ")):
        return None
    return _read_action(daemon, text)


def _read_queue_line(daemon: str, rest: str) -> dict[str, Any] | None:
    for reader in _READERS:
        fields = reader(daemon, rest)
        if fields is not None:
            return fields
    return None


def _read_delivery(daemon: str, rest: str) -> dict[str, Any] | None:
    # "to=<a@b>, orig_to=<c@d>, relay=local, delay=0.1, delays=0/0/0/0.1, dsn=2.0.0,
    #  status=sent (delivered to mailbox)"
    if not rest.startswith("to="):
        return None
    fields: dict[str, Any] = {"kind": EventKind.DELIVERY}
    status = _STATUS.search(rest)
    head = rest[: status.start()] if status else rest
    for pair in _KV.finditer(head):
        key, value = pair["key"], pair["value"]
        if key == "to":
            fields["recipient"] = _address(value)
        elif key == "orig_to":
            fields["orig_to"] = _address(value)
        elif key == "relay":
            fields["relay"] = value
        elif key == "delay":
            fields["delay"] = _float(value)
        elif key == "delays":
            fields["delays"] = value
        elif key == "dsn":
            fields["dsn"] = value
    if status is not None:
        fields["status"] = status["status"]
        reason = status["reason"]
        if reason is not None:
            fields["reason"] = reason
            hop = _QUEUED_AS.search(reason) or _FORWARDED_AS.search(reason)
            if hop is not None:
                fields["new_queue_id"] = hop["qid"]
    return fields


def _read_qmgr(daemon: str, rest: str) -> dict[str, Any] | None:
    # "from=<a@b>, size=1234, nrcpt=2 (queue active)"
    # "from=<a@b>, status=expired, returned to sender"
    if not rest.startswith("from=<"):
        return None
    fields: dict[str, Any] = {"kind": EventKind.QUEUED}
    for pair in _KV.finditer(rest):
        key, value = pair["key"], pair["value"]
        if key == "from":
            fields["sender"] = _address(value)
        elif key == "size":
            fields["size"] = _int(value)
        elif key == "nrcpt":
            fields["nrcpt"] = _int(value)
        elif key == "status":
            fields["status"] = value
    # "status=force-expired" comes from `postsuper -e` (Postfix 3.5 and later)
    if fields.get("status") in ("expired", "force-expired"):
        fields["kind"] = EventKind.EXPIRED
        fields["reason"] = rest.split(f", status={fields['status']}", 1)[-1].lstrip(", ") or None
    return fields


def _read_simple(daemon: str, rest: str) -> dict[str, Any] | None:
    # qmgr/postsuper "removed"; postsuper "placed on hold" / "released from hold" / "requeued"
    if rest == "removed":
        kind = EventKind.DELETE if daemon == "postsuper" else EventKind.REMOVED
        return {"kind": kind}
    if rest == "placed on hold":
        return {
            "kind": EventKind.HOLD,
            "action": "hold",
            "reason": "placed on hold by an administrator",
        }
    if rest == "released from hold":
        return {"kind": EventKind.RELEASE}
    if rest == "requeued":
        return {"kind": EventKind.REQUEUE}
    return None


def _read_client(daemon: str, rest: str) -> dict[str, Any] | None:
    # "client=localhost[127.0.0.1]:41276, orig_queue_id=9B3D1E8, orig_client=mx[1.2.3.4]"
    if not rest.startswith("client="):
        return None
    fields: dict[str, Any] = {"kind": EventKind.CLIENT}
    addr = _CLIENT_ADDR.match(rest, len("client="))
    if addr is not None:
        fields["client_host"], fields["client_ip"] = addr["host"] or None, addr["ip"]
    orig = re.search(r"\borig_queue_id=(?P<qid>[0-9A-Za-z]+)", rest)
    if orig is not None:
        fields["orig_queue_id"] = orig["qid"]
    return fields


def _read_pickup(daemon: str, rest: str) -> dict[str, Any] | None:
    # "uid=1000 from=<alice>"
    if not rest.startswith("uid="):
        return None
    sender = re.search(r"from=(<[^>]*>?)", rest)
    return {
        "kind": EventKind.PICKUP,
        "sender": _address(sender[1]) if sender else None,
        "client_host": "local " + rest.split(" ", 1)[0],
    }


def _read_message_id(daemon: str, rest: str) -> dict[str, Any] | None:
    # "message-id=<544D2523.30609@rhsoft.net>" / "message-id=<>" / "message-id==?UTF-8?B?...?="
    if not rest.startswith("message-id="):
        return None
    value = rest[len("message-id=") :]
    if value.startswith("<"):
        value = value[1:].split(">", 1)[0]
    return {"kind": EventKind.MESSAGE_ID, "message_id": value}


def _read_notice(daemon: str, rest: str) -> dict[str, Any] | None:
    # "sender non-delivery notification: 3F6A4E8"
    match = _NOTICE.match(rest)
    if match is None:
        return None
    return {"kind": EventKind.NOTIFICATION, "notice": match["notice"], "new_queue_id": match["qid"]}


def _read_action(daemon: str, rest: str) -> dict[str, Any] | None:
    match = _ACTION.match(rest)
    if match is None:
        return None
    action, body = match["action"], match["rest"]
    fields: dict[str, Any] = {"action": action, "kind": _action_kind(action)}
    tail_at = body.rfind("; from=<")
    head = body if tail_at < 0 else body[:tail_at]
    tail = "" if tail_at < 0 else body[tail_at + 2 :]
    stage, _, after_stage = head.partition(" ")
    stage = stage.removesuffix(":")  # "END-OF-MESSAGE: 554 ..." (proxy-*, no client named)
    fields["smtp_stage"] = stage or None
    client = re.search(r"(?:^| )from " + _CLIENT_ADDR.pattern + r"(?::\d+)?(?::\s*|$)", after_stage)
    text = after_stage
    if client is not None:
        fields["client_host"], fields["client_ip"] = client["host"] or None, client["ip"]
        if stage in ("header", "body"):  # "header Subject: x from host[ip]": text is the header
            text = after_stage[: client.start()].strip()
        else:
            text = after_stage[client.end() :]
    if tail:
        for pair in _KV.finditer(tail):
            if pair["key"] == "from":
                fields["sender"] = _address(pair["value"])
            elif pair["key"] == "to":
                fields["recipient"] = _address(pair["value"])
        helo = re.search(r"helo=<[^>]*>(?:: (?P<extra>.*))?$", tail)
        extra = helo["extra"] if helo else None
        if extra is None and stage in ("header", "body"):
            plain = re.search(r"proto=\S+: (?P<extra>.*)$", tail) or re.search(
                r"to=<[^>]*>: (?P<extra>.*)$", tail
            )
            extra = plain["extra"] if plain else None
        if extra:
            text = f"{text}: {extra}" if stage in ("header", "body") else extra
    reply = _REPLY.match(text)
    if reply is not None and (reply["code"] or reply["dsn"]):
        if reply["code"]:
            fields["reply_code"] = int(reply["code"])
        if reply["dsn"]:
            fields["dsn"] = reply["dsn"]
        text = text[reply.end() :]
    elif action in ("reject", "milter-reject", "proxy-reject"):
        found = _DSN.search(text)
        if found is not None:
            fields["dsn"] = found["dsn"]
    if action == "proxy-accept":  # "250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): ... queued as X"
        hop = _QUEUED_AS.search(text)
        if hop is not None:
            fields["new_queue_id"] = hop["qid"]
    fields["reason"] = text.strip() or None
    return fields


def _read_smtp_info(daemon: str, rest: str) -> dict[str, Any] | None:
    # "host mx.example.org[203.0.113.9] said: 450 4.2.0 try later (in reply to RCPT TO command)"
    # "lost connection with mx.example.org[203.0.113.9] while sending RCPT TO"
    # "conversation with mx.example.org[203.0.113.9] timed out while receiving the initial ..."
    if not rest.startswith(
        ("host ", "lost connection with ", "conversation with ", "enabling PIX")
    ):
        return None
    fields: dict[str, Any] = {"kind": EventKind.SMTP_INFO, "reason": rest}
    remote = re.search(_CLIENT_ADDR.pattern + r"(?::\d+)?", rest)
    if remote is not None:
        fields["relay"] = remote.group(0)
    found = _SAID_DSN.search(rest)  # after the reply code: an IP like 1.2.3.4 is no DSN
    if found is not None:
        fields["dsn"] = found["dsn"]
    return fields


def _action_kind(action: str) -> EventKind:
    if action in ("reject", "milter-reject", "proxy-reject"):
        return EventKind.REJECT
    if action in ("discard", "milter-discard"):
        return EventKind.DISCARD
    if action in ("hold", "milter-hold"):
        return EventKind.HOLD
    if action == "proxy-accept":
        return EventKind.PROXY_ACCEPT
    return EventKind.HEADER_ACTION


def _address(value: str) -> str:
    return value.strip().removeprefix("<").removesuffix(">")


def _float(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _int(value: str) -> int | None:
    return int(value) if value.isdigit() else None


_READERS = (
    _read_delivery,
    _read_simple,
    _read_qmgr,
    _read_client,
    _read_message_id,
    _read_pickup,
    _read_notice,
    _read_action,
    _read_smtp_info,
)
