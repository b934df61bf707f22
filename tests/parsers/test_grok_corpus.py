"""Conformance: the parser against the expected fields of the postfix-grok-patterns cases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from parsers.models import EventKind, LogEvent
from parsers.postfix import parse_line
from tests.corpus import corpus_dir

pytestmark = pytest.mark.corpus

# Events whose client host/IP we claim to read (connection-level noise such as "lost connection
# after DATA from x[ip]" or TLS lines is kept as OTHER on purpose: tracing does not need it).
CLIENT_KINDS = {
    EventKind.CONNECT,
    EventKind.DISCONNECT,
    EventKind.CLIENT,
    EventKind.REJECT,
    EventKind.DISCARD,
    EventKind.HOLD,
    EventKind.HEADER_ACTION,
}
RELAY_KINDS = {EventKind.DELIVERY, EventKind.SMTP_INFO}
POSTSUPER = {
    "removed": EventKind.DELETE,
    "requeued": EventKind.REQUEUE,
    "placed on hold": EventKind.HOLD,
    "released from hold": EventKind.RELEASE,
}


def _cases() -> list[Path]:
    return sorted(corpus_dir("postfix-grok-patterns").glob("*.yaml"))


def _load(path: Path) -> tuple[str, dict[str, Any]]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    return str(doc["data"]), dict(doc.get("results") or {})


def _event(path: Path, data: str) -> LogEvent:
    daemon = path.name.split("_", 1)[0]
    daemon = {"tls": "smtp", "command": "smtpd", "delays": "smtp"}.get(daemon, daemon)
    return parse_line(f"Jan  1 00:00:00 mx postfix/{daemon}[123]: {data}")


def _relay_parts(relay: str | None) -> tuple[str | None, str | None, str | None]:
    if relay is None or "[" not in relay:
        return relay, None, None
    host, rest = relay.split("[", 1)
    ip, _, port = rest.partition("]")
    return host, ip, port.lstrip(":") or None


def _checks(event: LogEvent, expected: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(field, expected, actual) for every grok field this parser claims to read."""
    out: list[tuple[str, Any, Any]] = []
    qid = expected.get("postfix_queueid")
    if qid is not None:
        out.append(("queue_id", None if qid == "NOQUEUE" else str(qid), event.queue_id))
    if "postfix_status" in expected:
        out.append(("status", expected["postfix_status"], event.status))
    if event.kind in RELAY_KINDS and "postfix_relay_hostname" in expected:
        host, ip, port = _relay_parts(event.relay)
        out.append(("relay host", expected["postfix_relay_hostname"], host))
        out.append(("relay ip", expected.get("postfix_relay_ip"), ip))
        if "postfix_relay_port" in expected:
            out.append(("relay port", str(expected["postfix_relay_port"]), port))
    if event.kind in CLIENT_KINDS and "postfix_client_ip" in expected:
        out.append(("client ip", str(expected["postfix_client_ip"]), event.client_ip))
        out.append(("client host", expected.get("postfix_client_hostname"), event.client_host))
    if event.kind is EventKind.REJECT and "postfix_status_code" in expected:
        out.append(("reply code", int(expected["postfix_status_code"]), event.reply_code))
    if event.kind is EventKind.REJECT and "postfix_status_code_enhanced" in expected:
        out.append(("dsn", str(expected["postfix_status_code_enhanced"]), event.dsn))
    if "postfix_action" in expected:
        out.append(("action", expected["postfix_action"], event.action))
        out.append(("stage", expected.get("postfix_smtp_stage"), event.smtp_stage))
    if "postfix_message-id" in expected:
        out.append(("message-id", expected["postfix_message-id"], event.message_id))
    if "postfix_bounce_queueid" in expected:
        out.append(("notification id", expected["postfix_bounce_queueid"], event.new_queue_id))
        out.append(("kind", EventKind.NOTIFICATION, event.kind))
    if "postfix_postsuper_action" in expected:
        out.append(("kind", POSTSUPER[expected["postfix_postsuper_action"]], event.kind))
    for key in ("postfix_smtp_response", "postfix_local_response", "postfix_pipe_response"):
        if key in expected and "postfix_status" in expected:
            out.append(("reason", expected[key], event.reason))
    if "postfix_from" in expected:
        out.append(("sender", expected["postfix_from"], event.sender))
    return out


def test_every_grok_case_parses_and_known_fields_match() -> None:
    """Each of the grok cases parses without error, and every field we read equals grok's."""
    cases = _cases()
    assert len(cases) >= 150
    mismatches = []
    compared = 0
    for path in cases:
        data, expected = _load(path)
        event = _event(path, data)
        for name, want, got in _checks(event, expected):
            compared += 1
            if want != got:
                mismatches.append(f"{path.name}: {name}: expected {want!r}, got {got!r}")
    assert not mismatches, "\n".join(mismatches)
    assert compared >= 200  # the comparison really covers the corpus, not a handful of lines


def test_delivery_cases_become_delivery_events() -> None:
    """Every grok case with a status= from a delivery agent is read as a delivery."""
    seen = 0
    for path in _cases():
        data, expected = _load(path)
        if "postfix_status" in expected and expected["postfix_status"] != "expired":
            event = _event(path, data)
            assert event.kind is EventKind.DELIVERY, path.name
            assert event.recipient, path.name
            seen += 1
    assert seen >= 10
