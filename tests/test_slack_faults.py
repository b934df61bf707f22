"""Faults around the Slack side, through the real Bolt app and the fake Slack: the audit file on a
full disk or unwritable, Slack answering 500 for a while or for good, and the Socket Mode
connection dropped while an answer is being searched."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from bot.slack.audit import Outcome
from bot.sources.source import LogSource
from tests import test_slack_app
from tests.fakeslack import FakeSlack, slash_command_payload
from tests.test_slack_app import (
    CHANNEL,
    HOWTO_LOG,
    USER,
    BotFactory,
    GatedRunner,
    RecordingAudit,
    log_settings,
    socket_mode_app,
    text_of,
)

# The app tests' fixtures, by name: the fake Slack and a factory of served Bolt apps.
fake = test_slack_app.fake
make_bot = test_slack_app.make_bot

QUERY = "sender2@example.net 2024-05-13"
DELIVERED = "✅ Delivered · sender2@example.net → recipient2@example.org"


@pytest.mark.parametrize(
    ("audit_path", "why"),
    [(Path("/dev/full"), "No space left on device"), (None, "Is a directory")],
    ids=["disk-full", "unwritable"],
)
async def test_a_failing_audit_file_is_logged_once_and_answers_go_on(
    make_bot: BotFactory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    audit_path: Path | None,
    why: str,
) -> None:
    """With the audit file on a full disk (/dev/full) or not writable (a directory), three
    questions are all answered in their threads, the failure is logged once with its reason,
    and the service log still never quotes a query."""
    bot = await make_bot()
    bot.audit.path = audit_path or tmp_path  # the real AuditLog writes here
    caplog.set_level(logging.INFO)
    for n in range(3):
        await bot.command(QUERY, name=f"r{n}")
    entries = await bot.audit.wait(3)
    assert [e.outcome for e in entries] == [Outcome.ANSWERED] * 3
    parents = [c for c in bot.fake.calls_to("chat.update") if DELIVERED in text_of(c.params)]
    assert len(parents) == 3
    failed = [r for r in caplog.records if "audit_write_failed" in r.getMessage()]
    assert len(failed) == 1
    assert why in failed[0].getMessage()
    assert all("sender2@example.net" not in r.getMessage() for r in caplog.records)


async def test_audit_writes_that_succeed_again_report_how_many_entries_were_lost(
    make_bot: BotFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """After the disk has room again, the next entry is written and the log says how many
    entries were lost meanwhile."""
    bot = await make_bot()
    writable = bot.audit.path
    bot.audit.path = Path("/dev/full")
    caplog.set_level(logging.INFO)
    await bot.command(QUERY, name="r0")
    await bot.command(QUERY, name="r1")
    await bot.audit.wait(2)
    bot.audit.path = writable
    await bot.command(QUERY, name="r2")
    await bot.audit.wait(3)
    assert len(bot.audit.lines()) == 1
    recovered = [
        r.getMessage() for r in caplog.records if "audit_write_recovered" in r.getMessage()
    ]
    assert len(recovered) == 1
    assert "lost_entries=2" in recovered[0]


async def test_slack_answering_500_for_a_while_is_retried_and_the_answer_arrives(
    make_bot: BotFactory,
) -> None:
    """Two 500s on the first post and one on the summary's update are retried; the thread ends
    with the answer and nothing is said to have failed."""
    bot = await make_bot()
    bot.fake.server_error_next("chat.postMessage", times=2)
    bot.fake.server_error_next("chat.update")
    await bot.command(QUERY)
    [entry] = await bot.audit.wait(1, timeout=30)
    assert entry.outcome is Outcome.ANSWERED
    assert entry.delivery == "thread"
    assert [c.status for c in bot.fake.calls_to("chat.postMessage")][:3] == [500, 500, 200]
    parent, replies = bot.thread()
    assert DELIVERED in text_of(parent)
    assert len(replies) == 1
    assert not bot.fake.calls_to("respond:r1")


async def test_slack_answering_500_for_good_ends_in_one_clear_failure(
    make_bot: BotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """When every Web API call and the response URL answer 500, the bot retries a bounded number
    of times, logs one clear failure per way it tried, audits the request and is free again."""
    bot = await make_bot()
    for method in ("chat.postMessage", "chat.update", "respond:r1"):
        bot.fake.server_error_next(method, times=50)
    caplog.set_level(logging.INFO)
    status, _, _ = await bot.command(QUERY)
    assert status == 200  # the ack does not depend on the Web API
    [entry] = await bot.audit.wait(1, timeout=60)
    assert entry.allowed is True
    posts = bot.fake.calls_to("chat.postMessage")
    assert 1 < len(posts) <= 3  # retried, but bounded
    assert all(c.status == 500 for c in posts)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len([m for m in errors if m.startswith("parent_post_failed")]) == 1
    assert len([m for m in errors if m.startswith("respond_failed")]) >= 1
    assert entry.outcome is Outcome.FAILED
    assert entry.reason == "the answer could not be posted to Slack"
    assert len([m for m in errors if m.startswith("answer_lost")]) == 1
    assert len(bot.running) == 0  # nothing left hanging


async def test_socket_mode_dropped_mid_answer_still_delivers_the_answer(
    fake: FakeSlack, tmp_path: Path
) -> None:
    """The WebSocket is cut after the ack while the server is still searching: the client
    connects again by itself and the answer still arrives in the thread (it goes over the Web
    API, not the socket)."""
    gate = asyncio.Event()
    settings = log_settings(HOWTO_LOG)

    def sources() -> list[LogSource]:
        server = settings.servers[0]
        return [LogSource(server, GatedRunner(server.name, gate), settings.limits)]

    audit = RecordingAudit(tmp_path / "audit.jsonl")
    async with socket_mode_app(fake, settings, sources, audit):
        payload = slash_command_payload(
            text=QUERY, user_id=USER, channel_id=CHANNEL, response_url=fake.response_url("r1")
        )
        envelope = await fake.send_socket_envelope("slash_commands", payload)
        await fake.wait_for_ack(envelope)
        await fake.drop_socket_connections(abrupt=True)
        gate.set()
        [entry] = await audit.wait(1, timeout=30)
        await fake.wait_for_socket_client(timeout=30, total=2)
    assert entry.outcome is Outcome.ANSWERED
    assert entry.delivery == "thread"
    replies = [c for c in fake.calls_to("chat.postMessage") if c.params.get("thread_ts")]
    assert len(replies) == 1
    assert "✅ recipient2@example.org — delivered to the mailbox on mx1" in text_of(
        replies[0].params
    )
