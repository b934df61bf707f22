"""A client that connected and left without a queued mail, made real: Postfix's own log of a
client on 127.0.0.5 that dropped after a pipelined MAIL FROM, made too many errors, and failed
STARTTLS (scripts/capture_session_logs.py). Asked for by the client's IP, or by the sender it
named only in such a session, the answer is `connection_no_mail` with those lines as evidence,
through the CLI text, the JSON code and the Slack thread; never "never reached"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from bot.settings import ServerConfig, Settings, SlackConfig
from bot.slack.audit import Outcome
from tests.test_slack_app import BotFactory, text_of
from tests.test_slack_app import fake as fake
from tests.test_slack_app import make_bot as make_bot

SESSIONS = Path(__file__).resolve().parent / "fixtures" / "postfix" / "sessions" / "mail.log"
# what smtpd said (after "postfix/smtpd[PID]: "), so a fresh capture's PIDs change nothing
DROPPED = "lost connection after MAIL from unknown[127.0.0.5]"
ERRORS = "too many errors after RCPT from unknown[127.0.0.5]"
TLS = "SSL_accept error from unknown[127.0.0.5]: -1"
PIPELINED = (
    "improper command pipelining after HELO from unknown[127.0.0.5]: "
    "MAIL FROM:<x@example.net>\\r\\n"
)


def trace(*query: str) -> list[str]:
    return ["trace", *query, "--log", str(SESSIONS), "--year", "2026"]


def json_answer(capsys: pytest.CaptureFixture[str], *query: str) -> dict[str, object]:
    status = main([*trace(*query), "--format", "json"])
    doc: dict[str, object] = json.loads(capsys.readouterr().out)
    assert status == 1, doc
    return doc


def test_client_ip_tells_each_session_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """Asked for the client's IP: exit 1, the first cause is that it connected without mail,
    with one line per session saying how it ended, in log order; no 'never reached'."""
    status = main(trace("127.0.0.5", "2026-12-01"))
    out = capsys.readouterr().out
    assert status == 1
    lines = out.splitlines()
    assert lines[0] == "client 127.0.0.5 on 2026-12-01: nothing found"
    first = lines.index(
        "1. The client connected, but no mail was queued (it disconnected, timed out, failed "
        "TLS or made too many errors)."
    )
    evidence = lines[first + 1 : first + 4]
    for line, ending in zip(evidence, (DROPPED, ERRORS, TLS), strict=True):
        assert line.startswith("   evidence: Dec 01 "), line
        assert line.endswith(ending), line
    assert lines[first + 4].startswith("   next: The sending side gave up")
    assert "never reached" not in out
    assert "connect from" not in out  # the bare start of a session says nothing


def test_client_ip_json_code(capsys: pytest.CaptureFixture[str]) -> None:
    """The JSON names the cause `connection_no_mail`, first, with the three sessions."""
    doc = json_answer(capsys, "127.0.0.5", "2026-12-01")
    diagnosis = doc["diagnosis"]
    assert isinstance(diagnosis, list)
    codes = [d["code"] for d in diagnosis]
    assert codes[0] == "connection_no_mail"
    assert "never_reached" not in codes
    assert [e.partition("]: ")[2] for e in diagnosis[0]["evidence"]] == [
        DROPPED,
        ERRORS,
        TLS,
    ]
    assert doc["messages"] == []


@pytest.mark.parametrize("target", ["@example.net", "x@example.net"])
def test_sender_named_only_in_a_session_leads_to_the_client(
    capsys: pytest.CaptureFixture[str], target: str
) -> None:
    """A sender domain (or address) that appears only in a session that queued nothing:
    `connection_no_mail` naming the client, the line as evidence, the client as the next
    query; not 'another role', not 'never reached'."""
    doc = json_answer(capsys, target, "2026-12-01")
    diagnosis = doc["diagnosis"]
    assert isinstance(diagnosis, list)
    codes = [d["code"] for d in diagnosis]
    assert codes[0] == "connection_no_mail"
    assert "other_role" not in codes
    assert "never_reached" not in codes
    cause = diagnosis[0]
    assert cause["cause"].startswith(f"A client sending as {target} (127.0.0.5) connected")
    (line,) = cause["evidence"]
    assert line.endswith(PIPELINED)
    assert cause["next_step"].endswith("To see its whole session: `127.0.0.5 2026-12-01`.")


def test_a_sender_that_sent_mail_is_found(capsys: pytest.CaptureFixture[str]) -> None:
    """The same log holds an ordinary mail: asked for its sender, it is a found answer."""
    status = main(trace("ok@example.org", "2026-12-01"))
    out = capsys.readouterr().out
    assert status == 0
    assert "Delivered" in out
    assert "no mail was queued" not in out


SLACK_CASES = {
    "@example.net 2026-11-30": (
        "1. A client sending as @example.net (127.0.0.5) connected, but no mail",
        "improper command pipelining after HELO from unknown[127.0.0.5]",
        "`127.0.0.5 2026-11-30`",
    ),
    "127.0.0.5 2026-11-30": ("1. The client connected, but no mail", DROPPED, ERRORS, TLS),
}


@pytest.mark.parametrize("query", SLACK_CASES)
async def test_slack_thread_shows_the_sessions(make_bot: BotFactory, query: str) -> None:
    """In Slack the thread says the client connected without mail, with the sessions' lines
    (and, asked by sender, the client as the next query); the audit says `nothing_found`.
    (The asker is in Los Angeles: the capture's 00:56 UTC on Dec 1 is Nov 30 there.)"""
    server = ServerConfig(name="mx-s", local=True, logs=(str(SESSIONS),), year=2026)
    settings = Settings(default_days=None, servers=(server,), slack=SlackConfig())
    bot = await make_bot(settings)
    await bot.command(query)
    [entry] = await bot.audit.wait(1)
    assert entry.outcome is Outcome.NOTHING_FOUND
    parent, replies = bot.thread()
    assert "on 2026-11-30: nothing found" in text_of(parent)
    thread = "\n".join(text_of(r) for r in replies)
    for said in SLACK_CASES[query]:
        assert said in thread
    assert "never reached" not in thread
