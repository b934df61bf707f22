"""The Slack bot end to end: the real Bolt app, served over HTTP or Socket Mode, against the fake
Slack in tests/fakeslack.py, searching real Postfix logs (local files, or real sshd servers)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
import yaml
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

from bot.render.story import STATUS_EMOJI, TALLY_WORDS, VERDICT_EMOJI
from bot.settings import ServerConfig, Settings, SlackConfig
from bot.slack.app import build_app
from bot.slack.audit import AuditEntry, AuditLog, Outcome
from bot.slack.running import RunningSearches
from bot.slack.serve import CANCEL_WAIT_S, Health, build_web_app, start_web
from bot.slack.webapi import build_client
from bot.sources.factory import build_sources
from bot.sources.runner import LocalRunner
from bot.sources.source import LogSource
from bot.sources.ssh import SSHPool
from parsers.journey import Verdict
from parsers.models import Status
from tests.fakeslack import (
    Call,
    FakeSlack,
    sign_slack_request,
    signed_slash_command_request,
    slash_command_payload,
)
from tests.journeys import expected_ends
from tests.sshd import SshCluster, free_port
from tests.test_slack_render import maillog

BOT_TOKEN = "xoxb-test-bot-token"
APP_TOKEN = "xapp-test-app-token"
SIGNING_SECRET = "test-signing-secret"
HOWTO_LOG = Path(__file__).parent / "fixtures" / "howto" / "maillog"
NOW = datetime(2024, 5, 20, 12, tzinfo=UTC)
CHANNEL = "C1"
USER = "U1"


class RecordingAudit(AuditLog):
    """The real audit log (a JSON lines file) that also lets a test wait for entries."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.entries: list[AuditEntry] = []
        self.changed = asyncio.Event()

    def record(self, entry: AuditEntry) -> None:
        super().record(entry)
        self.entries.append(entry)
        self.changed.set()

    async def wait(self, count: int = 1, timeout: float = 15.0) -> list[AuditEntry]:
        async with asyncio.timeout(timeout):
            while len(self.entries) < count:
                self.changed.clear()
                await self.changed.wait()
        return self.entries

    def lines(self) -> list[dict[str, Any]]:
        assert self.path is not None
        return [json.loads(line) for line in self.path.read_text().splitlines()]


class GatedRunner(LocalRunner):
    """Runs commands locally, but only once the test opens the gate (a slow server)."""

    def __init__(self, name: str, gate: asyncio.Event) -> None:
        super().__init__(name)
        self.gate = gate

    async def batches(self, command: str) -> AsyncIterator[list[str]]:
        await self.gate.wait()
        async for batch in super().batches(command):
            yield batch


class StubbornRunner(LocalRunner):
    """A server that never answers and, once cancelled, takes until `released` to stop (like
    an SSH connection that is slow to close)."""

    def __init__(self, name: str, released: asyncio.Event) -> None:
        super().__init__(name)
        self.released = released

    async def batches(self, command: str) -> AsyncIterator[list[str]]:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await self.released.wait()
            raise
        yield []  # pragma: no cover - makes this an async generator


class BrokenRunner(LocalRunner):
    """A runner with a bug: it raises something that is not a mailtrace error."""

    async def batches(self, command: str) -> AsyncIterator[list[str]]:
        raise RuntimeError("unexpected failure inside the runner")
        yield []  # pragma: no cover - makes this an async generator


def log_settings(*logs: Path, **slack: Any) -> Settings:
    """One local server `mx1` reading `logs` (lines from 2024), with Slack settings."""
    server = ServerConfig(  # copies of logs: no live queue to ask
        name="mx1", local=True, logs=tuple(map(str, logs)), year=2024, queue=False
    )
    return Settings(default_days=None, servers=(server,), slack=SlackConfig(**slack))


@dataclass
class Bot:
    """The app under test, its fake Slack, its audit log, and an HTTP endpoint in front."""

    fake: FakeSlack
    app: AsyncApp
    audit: RecordingAudit
    running: RunningSearches
    url: str = ""
    session: aiohttp.ClientSession | None = None
    cleanups: list[Callable[[], Any]] = field(default_factory=list)

    async def command(
        self, text: str, *, user: str = USER, channel: str = CHANNEL, name: str = "r1"
    ) -> tuple[int, dict[str, Any], float]:
        """POST a correctly signed slash command; returns (status, body, seconds to the ack)."""
        body, headers = signed_slash_command_request(
            SIGNING_SECRET,
            text=text,
            user_id=user,
            channel_id=channel,
            response_url=self.fake.response_url(name),
        )
        return await self.post(body, headers)

    async def click(
        self,
        value: str,
        *,
        user: str = USER,
        name: str = "b1",
        action_id: str = "show_log_lines:0",
        thread_ts: str | None = None,
    ) -> int:
        """POST a signed block_actions request for a button (by default "Show log lines") of a
        message, in a thread when `thread_ts` is given."""
        container = {"type": "message", "channel_id": CHANNEL, "message_ts": "1.1"}
        if thread_ts is not None:
            container["thread_ts"] = thread_ts
        payload = {
            "type": "block_actions",
            "team": {"id": "T1", "domain": "fake-workspace"},
            "user": {"id": user, "name": user.lower(), "team_id": "T1"},
            "api_app_id": "A1",
            "token": "fake-verification-token",
            "trigger_id": "1.2.3",
            "container": container,
            "channel": {"id": CHANNEL, "name": "ops"},
            "response_url": self.fake.response_url(name),
            "actions": [
                {
                    "type": "button",
                    "action_id": action_id,
                    "block_id": "b",
                    "value": value,
                    "action_ts": "1.5",
                }
            ],
        }
        body = urlencode({"payload": json.dumps(payload)})
        ts = int(time.time())
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": sign_slack_request(SIGNING_SECRET, body, ts),
        }
        status, _, _ = await self.post(body, headers)
        return status

    async def post(self, body: str, headers: dict[str, str]) -> tuple[int, dict[str, Any], float]:
        assert self.session is not None
        started = time.monotonic()
        async with self.session.post(self.url, data=body, headers=headers) as response:
            text = await response.text()
            elapsed = time.monotonic() - started
            data = json.loads(text) if text.startswith("{") else {"raw": text}
            return response.status, data, elapsed

    def thread(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The parent message as it is now (after updates) and the replies under it."""
        first = next(
            c
            for c in self.fake.calls_to("chat.postMessage")
            if c.status == 200 and not c.params.get("thread_ts")
        )
        ts = first.response["ts"]
        parent = self.fake.messages[(CHANNEL, ts)]
        replies = [
            c.params for c in self.fake.calls_to("chat.postMessage") if c.params.get("thread_ts")
        ]
        assert all(r["thread_ts"] == ts for r in replies)
        return parent, replies


def text_of(message: dict[str, Any]) -> str:
    """Every mrkdwn text of a posted message's blocks, joined."""
    out = []
    for block in message.get("blocks") or []:
        if "text" in block:
            out.append(block["text"]["text"])
        out.extend(e.get("text", "") for e in block.get("elements", []) if "action_id" not in e)
    return "\n".join(str(t) for t in out)


def buttons(message: dict[str, Any]) -> list[str]:
    return [
        e["value"]
        for block in message.get("blocks") or []
        if block["type"] == "actions"
        for e in block["elements"]
    ]


def posted_texts(fake: FakeSlack) -> list[str]:
    """The plain `text` of every message the bot posted, updated or sent to a response URL."""
    calls = [c for c in fake.calls if c.method in ("chat.postMessage", "chat.update")]
    texts = [str(c.params.get("text", "")) for c in calls]
    texts += [str(c.json_body["text"]) for c in fake.calls if c.method.startswith("respond:")]
    return texts


def hang_until(released: asyncio.Event, seen: asyncio.Event | None = None) -> Any:
    """A fake Slack handler that answers only once `released` is set: the bot's client, with a
    short time limit, gives up first with a TimeoutError."""

    async def handler(call: Call) -> dict[str, Any]:
        if seen is not None:
            seen.set()
        await released.wait()
        return {"ok": True, "channel": call.params.get("channel"), "ts": "1700000000.000100"}

    return handler


def bounce_log(path: Path) -> Path:
    """A bounce (sender <>) delivered to sender@example.org, as Postfix logs it."""
    path.write_text(
        "May 13 10:00:11 mail postfix/cleanup[2214]: 5C6D7E8F9A: "
        "message-id=<20240513100011.5C6D7E8F9A@mail.example.net>\n"
        "May 13 10:00:11 mail postfix/qmgr[1090]: 5C6D7E8F9A: from=<>, size=3456, nrcpt=1 "
        "(queue active)\n"
        "May 13 10:00:12 mail postfix/smtp[2216]: 5C6D7E8F9A: to=<sender@example.org>, "
        "relay=mx.example.org[203.0.113.5]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=2.0.0, "
        "status=sent (250 2.0.0 Ok: queued as 4XYZ)\n"
        "May 13 10:00:12 mail postfix/qmgr[1090]: 5C6D7E8F9A: removed\n"
    )
    return path


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(valid_tokens=[BOT_TOKEN, APP_TOKEN]) as fake_slack:
        yield fake_slack


BotFactory = Callable[..., Awaitable[Bot]]


@pytest.fixture
async def make_bot(fake: FakeSlack, tmp_path: Path) -> AsyncIterator[BotFactory]:
    """Build the app for some settings (and sources) and serve it over HTTP on 127.0.0.1:0."""
    bots: list[Bot] = []

    async def make(
        settings: Settings | None = None,
        sources: Callable[[], Sequence[LogSource]] | None = None,
        *,
        slack_timeout_s: float | None = None,
        **options: Any,
    ) -> Bot:
        settings = settings or log_settings(HOWTO_LOG)
        audit = RecordingAudit(tmp_path / f"audit-{len(bots)}.jsonl")
        running = RunningSearches(settings.slack.max_concurrent if settings.slack else 4)
        client = build_client(BOT_TOKEN, fake.api_url)
        if slack_timeout_s is not None:
            client.timeout = slack_timeout_s  # the client's own per-request time limit
        app = build_app(
            settings,
            sources or (lambda: build_sources(settings)),
            client=client,
            signing_secret=SIGNING_SECRET,
            clock=lambda: NOW,
            running=running,
            audit=audit,
            **options,
        )
        bot = Bot(fake, app, audit, running)
        health = Health("http", running)
        runner, (host, port) = await start_web(build_web_app(app, health), "127.0.0.1", 0)
        bot.url = f"http://{host}:{port}/slack/events"
        bot.session = aiohttp.ClientSession()
        bot.cleanups += [runner.cleanup, bot.session.close]
        bots.append(bot)
        return bot

    yield make
    for bot in bots:
        await bot.running.drain(2.0, 2.0)
        for cleanup in bot.cleanups:
            await cleanup()


def report_timing(
    capsys: pytest.CaptureFixture[str], what: str, ack_s: float, total_s: float
) -> None:
    """Print the acknowledgement time and the time to the complete answer (for the notes)."""
    with capsys.disabled():
        print(
            f"\n[slack timing] {what}: ack {ack_s * 1000:.0f} ms, complete answer {total_s * 1000:.0f} ms"
        )


# ---------------------------------------------------------------------- HTTP mode


async def test_signed_command_is_acked_at_once_and_answered_in_a_thread(
    make_bot: BotFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """A signed /mailtrace over HTTP is acked ephemerally, then the thread shows the sent mail."""
    bot = await make_bot()
    started = time.monotonic()
    status, body, ack_s = await bot.command("sender2@example.net 2024-05-13")
    [entry] = await bot.audit.wait(1)
    total_s = time.monotonic() - started
    report_timing(capsys, "HTTP mode, local log", ack_s, total_s)

    assert status == 200
    assert body["text"].startswith("🔎 Searching for “sender2@example.net 2024-05-13”")
    assert body["response_type"] == "ephemeral"
    parent, replies = bot.thread()
    summary = text_of(parent)
    assert "sender2@example.net on 2024-05-13 — 1 mail: delivered" in summary
    # 10:00:11 UTC shown in the asker's Slack zone (the fake's default: America/Los_Angeles)
    assert "✅ Delivered · sender2@example.net → recipient2@example.org · May 13 03:00" in summary
    assert parent["text"]  # a plain-text fallback always comes with the blocks
    [reply] = replies
    detail = text_of(reply)
    assert detail.startswith("*✅ Delivered · sender2@example.net → recipient2@example.org")
    assert "✅ recipient2@example.org — delivered to the mailbox on mx1" in detail
    assert "Queue IDs: mx1 BCDEFGHIJKL" in detail  # the evidence, small, after the story
    assert "Message-ID: &lt;20240513100011.1234@example.net&gt;" in detail
    assert buttons(reply)
    assert bot.fake.last_call("users.info").params["user"] == USER
    assert entry.outcome is Outcome.ANSWERED
    assert entry.counts == {"mails": 1, "messages": 1, "failures": 0, "delivered": 1}
    [line] = bot.audit.lines()
    assert line["user"] == USER
    assert line["channel"] == CHANNEL
    assert line["servers"] == ["mx1"]
    assert line["query"] == "sender2@example.net 2024-05-13"
    assert line["allowed"] is True
    assert line["delivery"] == "thread"
    assert line["duration_s"] >= 0


async def test_ack_comes_before_the_search_completes(make_bot: BotFactory) -> None:
    """The ack arrives while the server is still searching; progress shows on the parent."""
    gate = asyncio.Event()
    settings = log_settings(HOWTO_LOG)

    def sources() -> list[LogSource]:
        server = settings.servers[0]
        return [LogSource(server, GatedRunner(server.name, gate), settings.limits)]

    bot = await make_bot(settings, sources, progress_every_s=0.05)
    status, body, _ = await bot.command("sender2@example.net 2024-05-13")
    assert status == 200
    assert "Searching" in body["text"]
    await bot.fake.wait_for_call("chat.update")
    assert not bot.audit.entries  # the search has not finished
    parent, replies = bot.thread()
    assert "Still searching" in text_of(parent)
    assert "mx1: searching" in text_of(parent)  # which servers answered so far
    assert replies == []
    gate.set()
    [entry] = await bot.audit.wait(1)
    assert entry.outcome is Outcome.ANSWERED
    parent, replies = bot.thread()
    assert "✅ Delivered" in text_of(parent)
    assert len(replies) == 1


@pytest.mark.parametrize(
    ("secret", "age_s"),
    [("not-the-signing-secret", 0), (SIGNING_SECRET, 301)],
    ids=["bad-signature", "301-seconds-old"],
)
async def test_unverified_requests_are_refused(
    make_bot: BotFactory, secret: str, age_s: int
) -> None:
    """A wrong signature or a timestamp older than five minutes gets 401 and starts nothing."""
    bot = await make_bot()
    body, headers = signed_slash_command_request(
        secret,
        text="sender2@example.net",
        user_id=USER,
        channel_id=CHANNEL,
        response_url=bot.fake.response_url("r1"),
        timestamp=int(time.time()) - age_s,
    )
    status, _, _ = await bot.post(body, headers)
    assert status == 401
    await asyncio.sleep(0.1)
    assert not bot.fake.calls_to("chat.postMessage")
    assert not bot.audit.entries


# ---------------------------------------------------------------------- Socket Mode


@contextlib.asynccontextmanager
async def socket_mode_app(
    fake: FakeSlack,
    settings: Settings,
    sources: Callable[[], Sequence[LogSource]],
    audit: AuditLog,
) -> AsyncIterator[AsyncSocketModeHandler]:
    """The real app in Socket Mode, connected to the fake's WebSocket; closed on exit."""
    app = build_app(
        settings,
        sources,
        client=build_client(BOT_TOKEN, fake.api_url),
        clock=lambda: NOW,
        audit=audit,
    )
    handler = AsyncSocketModeHandler(app, app_token=APP_TOKEN)
    try:
        await handler.connect_async()  # type: ignore[no-untyped-call]
        await fake.wait_for_socket_client()
        yield handler
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]


async def test_socket_mode_envelope_is_acked_and_answered(
    fake: FakeSlack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A slash command envelope over the fake WebSocket is acked and the thread is posted."""
    settings = log_settings(HOWTO_LOG)
    audit = RecordingAudit(tmp_path / "audit.jsonl")
    async with socket_mode_app(fake, settings, lambda: build_sources(settings), audit):
        payload = slash_command_payload(
            text="sender2@example.net 2024-05-13",
            user_id=USER,
            channel_id=CHANNEL,
            response_url=fake.response_url("r1"),
        )
        started = time.monotonic()
        envelope = await fake.send_socket_envelope("slash_commands", payload)
        ack = await fake.wait_for_ack(envelope)
        ack_s = time.monotonic() - started
        await audit.wait(1)
        report_timing(capsys, "Socket Mode, local log", ack_s, time.monotonic() - started)
    assert ack["payload"]["text"].startswith("🔎 Searching")
    assert fake.last_call("apps.connections.open").token == APP_TOKEN
    replies = [c for c in fake.calls_to("chat.postMessage") if c.params.get("thread_ts")]
    assert len(replies) == 1
    assert "✅ recipient2@example.org — delivered to the mailbox on mx1" in text_of(
        replies[0].params
    )


# ---------------------------------------------------------------------- the answer


async def test_large_result_is_posted_within_slack_limits(
    make_bot: BotFactory, tmp_path: Path
) -> None:
    """150 messages: every post has at most 50 blocks, sections of at most 3000 characters,
    a text fallback, and every message appears in the thread."""
    log = tmp_path / "maillog"
    log.write_text(maillog(150))
    bot = await make_bot(log_settings(log))
    await bot.command("big@example.net 2024-05-13")
    [entry] = await bot.audit.wait(1)
    assert entry.counts["messages"] == 150
    posted = [c.params for c in bot.fake.calls_to("chat.postMessage")]
    posted += [c.params for c in bot.fake.calls_to("chat.update")]
    for params in posted:
        assert params["text"]
        assert len(params["blocks"]) <= 50
        for block in params["blocks"]:
            if block["type"] == "section":
                assert len(block["text"]["text"]) <= 3000
    parent, replies = bot.thread()
    everything = text_of(parent) + "\n".join(text_of(r) for r in replies)
    assert everything.count("*❌ Bounced by the receiving server") == 150  # one story each
    assert sum(len(buttons(r)) for r in replies) == 150


async def test_rate_limited_post_is_retried_and_the_answer_arrives(make_bot: BotFactory) -> None:
    """A 429 with Retry-After on chat.postMessage is retried by the client; nothing is lost."""
    bot = await make_bot()
    bot.fake.rate_limit_next("chat.postMessage", retry_after=0)
    await bot.command("sender2@example.net 2024-05-13")
    [entry] = await bot.audit.wait(1)
    assert entry.outcome is Outcome.ANSWERED
    statuses = [c.status for c in bot.fake.calls_to("chat.postMessage")]
    assert statuses[0] == 429
    assert statuses[1:] == [200, 200]
    parent, replies = bot.thread()
    assert "✅ Delivered" in text_of(parent)
    assert len(replies) == 1


async def test_server_error_on_update_is_retried(make_bot: BotFactory) -> None:
    """A 500 from chat.update is retried, so the parent still ends with the summary."""
    bot = await make_bot()
    bot.fake.server_error_next("chat.update")
    await bot.command("sender2@example.net 2024-05-13")
    await bot.audit.wait(1)
    assert [c.status for c in bot.fake.calls_to("chat.update")] == [500, 200]
    parent, _ = bot.thread()
    assert "✅ Delivered" in text_of(parent)


async def test_not_in_channel_falls_back_to_respond(make_bot: BotFactory) -> None:
    """When the bot may not post, the answer goes to response_url with a hint to invite it."""
    bot = await make_bot()
    bot.fake.fail_next("chat.postMessage", "not_in_channel")
    await bot.command("sender2@example.net 2024-05-13", channel="G9", name="private")
    [entry] = await bot.audit.wait(1)
    assert entry.delivery == "respond"
    assert entry.outcome is Outcome.ANSWERED
    [post] = bot.fake.calls_to("respond:private")
    body = post.json_body
    assert body["response_type"] == "ephemeral"
    text = text_of(body)
    assert "/invite @mailtrace" in text
    assert "✅ Delivered · sender2@example.net → recipient2@example.org" in text
    assert "✅ recipient2@example.org — delivered to the mailbox on mx1" in text
    assert len(bot.fake.calls_to("chat.postMessage")) == 1  # the refused one only


async def test_exception_inside_the_search_becomes_a_thread_message(
    make_bot: BotFactory,
) -> None:
    """A bug inside the search is reported in the thread (with a reference), never silence."""
    settings = log_settings(HOWTO_LOG)

    def sources() -> list[LogSource]:
        server = settings.servers[0]
        return [LogSource(server, BrokenRunner(server.name), settings.limits)]

    bot = await make_bot(settings, sources)
    await bot.command("sender2@example.net 2024-05-13")
    [entry] = await bot.audit.wait(1)
    assert entry.outcome is Outcome.FAILED
    assert "RuntimeError" in entry.reason
    _, replies = bot.thread()
    [reply] = replies
    assert "Something went wrong while searching" in text_of(reply)
    assert "reference" in text_of(reply)


async def test_failed_progress_update_never_stops_the_search(make_bot: BotFactory) -> None:
    """chat.update failing at the network level (a timeout) is only logged: the search goes on,
    the summary lands in the thread instead, and the asker is told what could not be posted."""
    gate, seen, released = asyncio.Event(), asyncio.Event(), asyncio.Event()
    settings = log_settings(HOWTO_LOG)

    def sources() -> list[LogSource]:
        server = settings.servers[0]
        return [LogSource(server, GatedRunner(server.name, gate), settings.limits)]

    bot = await make_bot(settings, sources, progress_every_s=0.05, slack_timeout_s=0.3)
    bot.fake.on("chat.update", hang_until(released, seen))
    try:
        await bot.command("sender2@example.net 2024-05-13")
        async with asyncio.timeout(5):
            await seen.wait()
        await asyncio.sleep(0.5)  # the first update has failed; later ones fail too
        gate.set()
        [entry] = await bot.audit.wait(1)
    finally:
        released.set()
    assert entry.outcome is Outcome.ANSWERED
    assert entry.counts["messages"] == 1
    _, replies = bot.thread()
    summary, detail = replies
    assert "✅ Delivered · sender2@example.net → recipient2@example.org" in text_of(summary)
    assert "✅ recipient2@example.org — delivered to the mailbox on mx1" in text_of(detail)
    [post] = bot.fake.calls_to("respond:r1")
    assert "could not be posted (summary: TimeoutError)" in text_of(post.json_body)


async def test_error_notice_reaches_the_asker_when_the_thread_cannot_be_reached(
    make_bot: BotFactory,
) -> None:
    """A failed search whose notice cannot be posted in the thread (network timeout) tells the
    asker through response_url instead, and is audited as failed."""
    settings = log_settings(HOWTO_LOG)
    released = asyncio.Event()

    def sources() -> list[LogSource]:
        server = settings.servers[0]
        return [LogSource(server, BrokenRunner(server.name), settings.limits)]

    hang = hang_until(released)

    async def post(call: Call) -> dict[str, Any]:
        if call.params.get("thread_ts"):
            return await hang(call)  # type: ignore[no-any-return]
        return {"ok": True, "channel": call.params["channel"], "ts": "1700000000.000100"}

    bot = await make_bot(settings, sources, slack_timeout_s=0.3)
    bot.fake.on("chat.postMessage", post)
    try:
        await bot.command("sender2@example.net 2024-05-13")
        [entry] = await bot.audit.wait(1)
        [notice] = await bot.fake.wait_for_call("respond:r1")
    finally:
        released.set()
    assert entry.outcome is Outcome.FAILED
    assert "RuntimeError" in entry.reason
    assert notice.json_body["response_type"] == "ephemeral"
    assert "Something went wrong while searching" in text_of(notice.json_body)


@pytest.mark.parametrize(
    ("query", "log", "escaped"),
    [
        ("&lt;!channel&gt; 2024-05-13", None, "message-id &lt;!channel&gt;"),
        ("sender@example.org 2024-05-13", "bounce", "&lt;&gt; (the mail system)"),
    ],
    ids=["channel-mention-as-message-id", "null-sender"],
)
async def test_plain_text_fallback_is_escaped_in_every_posted_message(
    make_bot: BotFactory, tmp_path: Path, query: str, log: str | None, escaped: str
) -> None:
    """The `text` of every message (progress, summary, replies) escapes <, > and &: a typed
    <!channel> never pings a channel and a bounce's <> sender shows as written."""
    path = bounce_log(tmp_path / "maillog") if log else HOWTO_LOG
    bot = await make_bot(log_settings(path), progress_every_s=0.0)
    await bot.command(query)
    await bot.audit.wait(1)
    texts = posted_texts(bot.fake)
    assert len(texts) >= 3  # the progress note, its update to the summary, a reply
    for text in texts:
        assert "<" not in text
        assert ">" not in text
    parent, _ = bot.thread()
    assert escaped in parent["text"]


async def test_a_search_slow_to_stop_still_says_so_within_the_cancel_wait(
    make_bot: BotFactory,
) -> None:
    """At shutdown, a cancelled search whose server is slow to let go still gets its "had to
    restart" reply posted before the cancel wait ends."""
    released = asyncio.Event()
    settings = log_settings(HOWTO_LOG)

    def sources() -> list[LogSource]:
        server = settings.servers[0]
        return [LogSource(server, StubbornRunner(server.name, released), settings.limits)]

    bot = await make_bot(settings, sources)
    try:
        await bot.command("sender2@example.net 2024-05-13")
        await bot.fake.wait_for_call("chat.postMessage")
        started = time.monotonic()
        finished, cancelled = await bot.running.drain(0.2, CANCEL_WAIT_S)
        elapsed = time.monotonic() - started
        _, replies = bot.thread()
    finally:
        released.set()
    assert (finished, cancelled) == (0, 1)
    assert elapsed < 0.2 + CANCEL_WAIT_S
    assert "had to restart" in text_of(replies[-1])
    [entry] = await bot.audit.wait(1)
    assert entry.outcome is Outcome.CANCELLED


# ---------------------------------------------------------------------- show log lines


async def test_show_log_lines_uploads_the_raw_lines_to_the_thread(make_bot: BotFactory) -> None:
    """The button attaches the message's raw Postfix lines to the thread as a file."""
    bot = await make_bot()
    await bot.command("sender2@example.net 2024-05-13")
    await bot.audit.wait(1)
    parent_ts = bot.fake.calls_to("chat.postMessage")[0].response["ts"]
    _, replies = bot.thread()
    [value] = buttons(replies[0])
    assert await bot.click(value) == 200
    entries = await bot.audit.wait(2)
    assert entries[1].outcome is Outcome.LINES_SHOWN
    assert entries[1].action == "show_lines"
    complete = bot.fake.last_call("files.completeUploadExternal")
    assert complete.params["channel_id"] == CHANNEL
    assert complete.params["thread_ts"] == parent_ts
    [uploaded] = bot.fake.files.values()
    assert uploaded.completed
    assert uploaded.filename == "mailtrace-mx1-BCDEFGHIJKL.log"
    assert uploaded.content is not None
    assert uploaded.content.decode().splitlines() == HOWTO_LOG.read_text().splitlines()


async def test_show_log_lines_without_a_thread_answers_ephemerally(make_bot: BotFactory) -> None:
    """For an answer given through response_url, the lines come back as escaped code blocks."""
    bot = await make_bot()
    bot.fake.fail_next("chat.postMessage", "channel_not_found")
    await bot.command("sender2@example.net 2024-05-13", name="private")
    await bot.audit.wait(1)
    [value] = [v for post in bot.fake.calls_to("respond:private") for v in buttons(post.json_body)]
    assert await bot.click(value, name="lines") == 200
    entries = await bot.audit.wait(2)
    assert entries[1].outcome is Outcome.LINES_SHOWN
    assert entries[1].delivery == "respond"
    [post] = await bot.fake.wait_for_call("respond:lines")
    text = text_of(post.json_body)
    assert text.startswith("```")
    assert "to=&lt;recipient2@example.org&gt;" in text
    assert not bot.fake.calls_to("files.getUploadURLExternal")


async def test_show_log_lines_after_a_restart_says_the_lines_are_gone(
    make_bot: BotFactory,
) -> None:
    """A button whose lines are no longer cached answers ephemerally instead of failing."""
    bot = await make_bot()
    assert await bot.click("unknown-key:0", name="old") == 200
    [entry] = await bot.audit.wait(1)
    assert entry.outcome is Outcome.LINES_EXPIRED
    [post] = await bot.fake.wait_for_call("respond:old")
    assert post.json_body["response_type"] == "ephemeral"
    assert "no longer have those log lines" in post.json_body["text"]
    assert not bot.fake.calls_to("files.getUploadURLExternal")


async def test_show_log_lines_falls_back_when_the_upload_cannot_connect(
    make_bot: BotFactory,
) -> None:
    """An upload URL that refuses the connection (an aiohttp error) makes the button answer with
    the lines as ephemeral code blocks; the click is audited."""
    bot = await make_bot()
    await bot.command("sender2@example.net 2024-05-13")
    await bot.audit.wait(1)
    _, replies = bot.thread()
    [value] = buttons(replies[0])
    closed = free_port()
    bot.fake.on(
        "files.getUploadURLExternal",
        lambda call: {
            "ok": True,
            "upload_url": f"http://127.0.0.1:{closed}/upload/v1/F1",
            "file_id": "F1",
        },
    )
    assert await bot.click(value, name="lines") == 200
    entries = await bot.audit.wait(2, timeout=10)
    assert entries[1].outcome is Outcome.LINES_SHOWN
    assert entries[1].delivery == "respond"
    [post] = await bot.fake.wait_for_call("respond:lines")
    assert post.json_body["response_type"] == "ephemeral"
    text = text_of(post.json_body)
    assert text.startswith("```")
    assert "to=&lt;recipient2@example.org&gt;" in text
    assert not bot.fake.calls_to("files.completeUploadExternal")


# ---------------------------------------------------------------------- access and limits


async def test_denied_user_is_refused_politely_and_audited(make_bot: BotFactory) -> None:
    """A user not on the allowed lists gets an ephemeral refusal; the audit log records it."""
    bot = await make_bot(log_settings(HOWTO_LOG, allowed_users=("UOK",)))
    status, body, _ = await bot.command("sender2@example.net 2024-05-13", user="UNO")
    assert status == 200
    assert body["text"].startswith("Sorry, you're not on the list")
    assert "UNO" in body["text"]
    [entry] = await bot.audit.wait(1)
    assert entry.outcome is Outcome.REFUSED
    assert entry.allowed is False
    assert entry.reason == "user not allowed"
    [line] = bot.audit.lines()
    assert line["user"] == "UNO"
    assert line["outcome"] == "refused"
    assert line["allowed"] is False
    assert not bot.fake.calls_to("chat.postMessage")


async def test_usergroup_members_are_allowed_and_channels_enforced(make_bot: BotFactory) -> None:
    """A member of an allowed user group may ask, but only in an allowed channel."""
    settings = log_settings(HOWTO_LOG, allowed_usergroups=("S1",), allowed_channels=(CHANNEL,))
    bot = await make_bot(settings)
    bot.fake.usergroups["S1"] = ["UGROUP"]
    _, body, _ = await bot.command("sender2@example.net 2024-05-13", user="UGROUP")
    assert "Searching" in body["text"]
    _, body, _ = await bot.command("sender2@example.net", user="UGROUP", channel="C2")
    assert "isn't enabled in this conversation" in body["text"]
    _, body, _ = await bot.command("sender2@example.net", user="UOTHER")
    assert body["text"].startswith("Sorry, you're not on the list")
    entries = await bot.audit.wait(3)
    assert sorted(e.outcome.value for e in entries) == ["answered", "refused", "refused"]
    assert len(bot.fake.calls_to("usergroups.users.list")) == 1  # cached


async def test_per_user_rate_limit_refuses_politely(make_bot: BotFactory) -> None:
    """Past the per-minute limit a user is told when to ask again; others are unaffected."""
    bot = await make_bot(log_settings(HOWTO_LOG, rate_limit_per_minute=1))
    _, first, _ = await bot.command("sender2@example.net 2024-05-13")
    _, second, _ = await bot.command("sender2@example.net 2024-05-13")
    _, other, _ = await bot.command("sender2@example.net 2024-05-13", user="U2")
    assert "Searching" in first["text"]
    assert "Searching" in other["text"]
    assert second["text"].startswith("You've reached my limit of 1 searches a minute")
    entries = await bot.audit.wait(3)
    assert [e.outcome for e in entries].count(Outcome.RATE_LIMITED) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("help", "tells you what happened to an email"),
        ("", "tells you what happened to an email"),
        ("sender2@example.net 2024-13-45", "is not a real date"),
        ("what happened", "is not an address"),
        ("sender2@example.net on mx9", "No server named mx9"),
        ("sender2@example.net 2024-05-13..2024-05-01", "ends before it starts"),
        ("sender2@example.net 2024-05-01..2024-05-03 10:00", "goes with one date"),
        ("sender2@example.net 25:00", "is not a time"),
        ("sender2@example.net 2024-05-13 2024-05-14", "I don't understand"),
        ("x" * 600, "longer than"),
    ],
)
async def test_help_and_usage_errors_are_ephemeral_with_examples(
    make_bot: BotFactory, text: str, expected: str
) -> None:
    """Help is the ephemeral ack with the grammar and examples; a usage error is the ephemeral
    ack in one line (at most one example) and where help is; nothing is posted."""
    bot = await make_bot()
    status, body, _ = await bot.command(text)
    assert status == 200
    assert body["response_type"] == "ephemeral"
    assert expected in body["text"]
    if text not in ("", "help"):
        complaint, hint = body["text"].split("\n")
        assert complaint.count("/mailtrace") <= 1
        assert "Usage" not in complaint
        assert "Examples:" not in complaint
        assert hint == "Type `/mailtrace help` for the whole grammar."
    else:
        assert "Examples:" in body["text"]
        assert "&lt;20240513.abc@mail.example.net&gt;" in body["text"]  # escaped for mrkdwn
    [entry] = await bot.audit.wait(1)
    assert entry.outcome in (Outcome.HELP, Outcome.USAGE_ERROR)
    await asyncio.sleep(0.05)
    assert not bot.fake.calls_to("chat.postMessage")


async def test_typed_message_id_is_unescaped_before_parsing(make_bot: BotFactory) -> None:
    """Slack sends a typed <message-id> as &lt;…&gt;; the query still finds the message."""
    bot = await make_bot()
    _, body, _ = await bot.command("&lt;20240513100011.1234@example.net&gt; 2024-05-13")
    assert "Searching" in body["text"]
    [entry] = await bot.audit.wait(1)
    assert entry.outcome is Outcome.ANSWERED
    assert entry.counts["messages"] == 1


async def test_shutdown_cancels_a_stuck_search_and_says_so(make_bot: BotFactory) -> None:
    """At shutdown a search past the deadline is cancelled, its thread says so, and new
    commands are told to come back."""
    gate = asyncio.Event()  # never opened: the server hangs
    settings = log_settings(HOWTO_LOG)

    def sources() -> list[LogSource]:
        server = settings.servers[0]
        return [LogSource(server, GatedRunner(server.name, gate), settings.limits)]

    bot = await make_bot(settings, sources)
    await bot.command("sender2@example.net 2024-05-13")
    await bot.fake.wait_for_call("chat.postMessage")
    assert len(bot.running) == 1
    finished, cancelled = await bot.running.drain(0.2)
    assert (finished, cancelled) == (0, 1)
    [entry] = await bot.audit.wait(1)
    assert entry.outcome is Outcome.CANCELLED
    _, replies = bot.thread()
    assert "had to restart" in text_of(replies[-1])
    _, body, _ = await bot.command("sender2@example.net 2024-05-13")
    assert "restarting" in body["text"]


# ---------------------------------------------------------------------- real Postfix captures

POSTFIX = Path(__file__).parent / "fixtures" / "postfix"
SCENARIOS = POSTFIX / "scenarios.yaml"


def two_host_scenarios() -> list[Any]:
    """The two-hosts scenarios of the real Postfix capture (a skip when it is not there)."""
    if not SCENARIOS.exists():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"no {SCENARIOS.name} yet"))]
    document = yaml.safe_load(SCENARIOS.read_text())
    return [
        pytest.param(s, id=s["name"]) for s in document["scenarios"] if s["capture"] == "two-hosts"
    ]


def two_host_settings() -> Settings:
    """mx-a and mx-b reading their captured logs, in the years the capture recorded."""
    files = {f["path"]: f for f in yaml.safe_load(SCENARIOS.read_text())["files"]}
    servers = tuple(
        ServerConfig(
            name=host,
            local=True,
            logs=(str(POSTFIX / "two-hosts" / host / "mail.log"),),
            timezone=files[f"two-hosts/{host}/mail.log"]["timezone"],
            year=files[f"two-hosts/{host}/mail.log"]["years"][-1],
            queue=False,  # copies of logs: no live queue to ask
        )
        for host in ("mx-a", "mx-b")
    )
    return Settings(
        default_days=None, servers=servers, slack=SlackConfig(rate_limit_per_minute=1000)
    )


@pytest.mark.parametrize("scenario", two_host_scenarios())
async def test_thread_tells_each_captured_mail_as_one_journey(
    make_bot: BotFactory, scenario: dict[str, Any]
) -> None:
    """Asking for a captured scenario's sender gives a parent with the tally and one verdict
    line, and one reply for the mail whose first line is that verdict and in which every
    recipient carries the icon of the end of its road (a 4xx "for now" never looks like a 5xx)."""
    bot = await make_bot(two_host_settings())
    await bot.command(scenario["sender"])
    [entry] = await bot.audit.wait(1)
    assert entry.outcome is Outcome.ANSWERED
    assert entry.counts["mails"] == 1
    parent, replies = bot.thread()
    [reply] = [text_of(r) for r in replies]
    head, *rest = text_of(parent).splitlines()
    [kind] = [v for v in Verdict if entry.counts.get(v.value)]  # the audit counts verdicts
    assert head.startswith(f"*{scenario['sender']}")
    assert head.endswith(f" — 1 mail: {TALLY_WORDS[kind]}*")
    [verdict] = [line for line in rest if line.startswith(tuple(VERDICT_EMOJI.values()))]
    assert reply.splitlines()[0] == f"*{verdict}*"  # the reply opens with the verdict
    ends = expected_ends(scenario)
    lines = reply.splitlines()
    if (
        all(status == "unknown" for status, _ in ends.values())
        and "(recipients not logged)" in verdict
    ):
        assert verdict.startswith(VERDICT_EMOJI[Verdict.UNKNOWN])
        return
    for address, (status, _host) in ends.items():
        icon = STATUS_EMOJI[Status(status)]
        assert any(line.startswith(f"{icon} {address}") for line in lines), (address, reply)
    statuses = {status for status, _ in ends.values()}
    if statuses == {"sent"}:
        assert verdict.startswith(VERDICT_EMOJI[Verdict.DELIVERED])
    elif "sent" in statuses:
        assert verdict.startswith(VERDICT_EMOJI[Verdict.PARTLY_DELIVERED])
        assert f"Delivered to {sum(s == 'sent' for s in statuses)}" in verdict


# ---------------------------------------------------------------------- real sshd behind


@pytest.mark.sshd
async def test_end_to_end_over_ssh_with_one_server_down(
    make_bot: BotFactory,
    sshd_cluster: SshCluster,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A signed command searches real sshd servers: mx1's message is answered in the thread,
    mx2 is searched too, and an unreachable mx3 is reported without hiding the others."""
    logs = tmp_path / "mx1-logs"
    logs.mkdir()
    shutil.copy(HOWTO_LOG, logs / "maillog")
    servers = (
        sshd_cluster.server_config("mx1", logs=(f"{logs}/maillog*",), year=2024),
        sshd_cluster.server_config("mx2"),
        sshd_cluster.server_config("mx3", server="mx2", port=free_port()),
    )
    settings = sshd_cluster.settings(*servers).model_copy(
        update={"default_days": None, "slack": SlackConfig()}
    )
    pool = SSHPool(settings)
    sources = build_sources(settings, pool)
    try:
        bot = await make_bot(settings, lambda: sources)
        started = time.monotonic()
        status, body, ack_s = await bot.command("sender2@example.net 2024-05-13")
        [entry] = await bot.audit.wait(1, timeout=60)
        report_timing(capsys, "HTTP mode, 3 servers over SSH", ack_s, time.monotonic() - started)
    finally:
        await pool.close()
    assert status == 200
    assert body["response_type"] == "ephemeral"
    assert entry.outcome is Outcome.INCOMPLETE  # one server lost: not a complete answer
    assert entry.servers == ("mx1", "mx2", "mx3")
    assert entry.counts == {"mails": 1, "messages": 1, "failures": 1, "delivered": 1}
    parent, replies = bot.thread()
    summary = text_of(parent)
    assert "✅ Delivered · sender2@example.net → recipient2@example.org · May 13 03:00" in summary
    assert "⚠️ mx3: unreachable" in summary  # a lost server is said in the parent
    assert "mx2: " not in summary  # what each server's logs cover is in the thread, not here
    [reply] = replies
    assert "✅ recipient2@example.org — delivered to the mailbox on mx1" in text_of(reply)
    assert "mx2: 0 of 4 log files searched" in text_of(reply)


# ---------------------------------------------------------------------- the asker's language


async def test_japanese_asker_gets_the_captured_mixed_mail_in_japanese(
    make_bot: BotFactory,
) -> None:
    """A ja-JP user (users.info locale) typing a full-width query with a Japanese date gets the
    real two-server capture's thread in Japanese, dates in the Japanese form, within the block
    limits; the server's own words stay verbatim."""
    if not SCENARIOS.exists():
        pytest.skip(f"no {SCENARIOS.name} yet")
    bot = await make_bot(two_host_settings())
    bot.fake.users[USER] = {"locale": "ja-JP", "tz": "Asia/Tokyo"}
    await bot.command("ｆｒｏｍ－ｍｉｘｅｄ＠ｅｘａｍｐｌｅ．ｎｅｔ　２０２６年１１月２９日")
    [entry] = await bot.audit.wait(1)
    assert entry.outcome is Outcome.ANSWERED, entry
    info = [c for c in bot.fake.calls_to("users.info") if c.params.get("user") == USER]
    assert info
    assert str(info[0].params.get("include_locale")).lower() in ("true", "1")
    parent, replies = bot.thread()
    head = text_of(parent).splitlines()[0]
    assert head.startswith("*from-mixed@example.net（2026年11月29日(日)）")
    assert "1通" in head
    assert "一部配送済み" in head
    [reply] = [text_of(r) for r in replies]
    assert "2件中1件配送済み" in reply
    assert "mixed-bad@example.org はバウンス：受信者のメールボックスが存在しない" in reply
    assert "対応者：送信者：宛先アドレスを確認してください" in reply
    assert "User unknown in virtual mailbox table" in reply  # the server's words, verbatim
    assert "11月29日(日) 01:58" in reply  # 16:58 UTC on Nov 28 is the next morning in Tokyo
    for message in (parent, *replies):
        blocks = message.get("blocks") or []
        assert len(blocks) <= 50
        assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in blocks)
