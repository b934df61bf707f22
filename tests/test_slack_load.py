"""A burst of slash commands through the real Bolt app in HTTP mode, searching real sshd servers
whose MaxSessions equals the bot's max_sessions: every command acked, every allowed one answered
in full in its own thread, users over the rate limit told so, every request audited."""

from __future__ import annotations

import asyncio
import statistics
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from bot.settings import Limits, Settings, SlackConfig
from bot.slack.app import build_app
from bot.slack.audit import Outcome
from bot.slack.running import RunningSearches
from bot.slack.serve import Health, build_web_app, start_web
from bot.slack.webapi import build_client
from bot.sources.factory import build_sources
from bot.sources.ssh import SSHPool
from tests import test_slack_app
from tests.sshd import Sshd, limited_sshds
from tests.test_slack_app import BOT_TOKEN, SIGNING_SECRET, Bot, RecordingAudit, text_of

pytestmark = pytest.mark.sshd

fake = test_slack_app.fake  # the fake Slack, by name

USERS = 10
PER_USER = 5  # 50 commands in all
PER_MINUTE = 4  # the configured rate limit: each user's fifth command is refused
MAX_SESSIONS = 4  # the bot's max_sessions and sshd's MaxSessions alike
BOUND_S = 300.0  # the whole burst; a hang fails the test instead of stalling CI


@pytest.fixture(scope="module")
def load_servers() -> Iterator[tuple[Settings, dict[str, Sshd]]]:
    """mx1 and mx2 with MaxSessions 4 and four days of logs; Slack settings for the burst."""
    # log copies: no live queue behind them
    with limited_sshds("mailtrace-slack-load-", MAX_SESSIONS, queue=False) as (configs, servers):
        settings = Settings(
            default_days=None,
            servers=configs,
            limits=Limits(connect_timeout=5, command_timeout=30, max_sessions=MAX_SESSIONS),
            slack=SlackConfig(rate_limit_per_minute=PER_MINUTE, max_concurrent=4),
        )
        yield settings, servers


@pytest.fixture
async def load_bot(
    fake: test_slack_app.FakeSlack,
    tmp_path: Path,
    load_servers: tuple[Settings, dict[str, Sshd]],
) -> AsyncIterator[Bot]:
    """The real app on the real clock (the logs end yesterday), served over HTTP on port 0."""
    settings, _ = load_servers
    audit = RecordingAudit(tmp_path / "audit.jsonl")
    running = RunningSearches(4)
    async with SSHPool(settings) as pool:
        sources = build_sources(settings, pool)
        app = build_app(
            settings,
            lambda: sources,
            client=build_client(BOT_TOKEN, fake.api_url),
            signing_secret=SIGNING_SECRET,
            running=running,
            audit=audit,
        )
        bot = Bot(fake, app, audit, running)
        runner, (host, port) = await start_web(
            build_web_app(app, Health("http", running)), "127.0.0.1", 0
        )
        bot.url = f"http://{host}:{port}/slack/events"
        async with aiohttp.ClientSession() as session:
            bot.session = session
            try:
                yield bot
            finally:
                await running.drain(2.0, 2.0)
                await runner.cleanup()


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[18]


async def test_fifty_commands_from_ten_users_are_all_answered_or_refused_by_the_rate_limit(
    load_bot: Bot,
    load_servers: tuple[Settings, dict[str, Sshd]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """50 signed commands from 10 users at once: each user's first four are answered in full
    (both servers, no failure) in their own threads, the fifth is told about the limit, all 50
    are audited, and sshd never refused a session."""
    _, servers = load_servers
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    commands = [
        (f"U{u:02d}", f"sender{u}@example.net {yesterday}", f"u{u}c{c}")
        for c in range(PER_USER)
        for u in range(USERS)
    ]

    async def one(user: str, text: str, name: str) -> tuple[int, str, float]:
        status, body, ack_s = await load_bot.command(text, user=user, name=name)
        return status, str(body.get("text", "")), ack_s

    async with asyncio.timeout(BOUND_S):
        acks = await asyncio.gather(*(one(*c) for c in commands))
        entries = await load_bot.audit.wait(len(commands), timeout=BOUND_S)

    assert [status for status, _, _ in acks] == [200] * len(commands)
    told = Counter(
        user
        for (user, _, _), (_, text, _) in zip(commands, acks, strict=True)
        if f"limit of {PER_MINUTE} searches a minute" in text
    )
    assert told == dict.fromkeys((f"U{u:02d}" for u in range(USERS)), PER_USER - PER_MINUTE)
    searching = sum("Searching" in text for _, text, _ in acks)
    assert searching == USERS * PER_MINUTE

    outcomes = Counter(e.outcome for e in entries)
    assert outcomes == {
        Outcome.ANSWERED: USERS * PER_MINUTE,
        Outcome.RATE_LIMITED: USERS * (PER_USER - PER_MINUTE),
    }
    answered = [e for e in entries if e.outcome is Outcome.ANSWERED]
    assert all(e.servers == ("mx1", "mx2") and e.counts["failures"] == 0 for e in answered)
    assert all(e.delivery == "thread" for e in answered)
    assert len(load_bot.audit.lines()) == len(commands)

    # one parent per answer, each ending with its own asker's answer and no lost server
    parents = [
        c
        for c in load_bot.fake.calls_to("chat.postMessage")
        if c.status == 200 and not c.params.get("thread_ts")
    ]
    assert len(parents) == len(answered)
    finals = [load_bot.fake.messages[(c.params["channel"], c.response["ts"])] for c in parents]
    assert all("⚠️" not in text_of(m) for m in finals)
    asked = Counter(e.query.split()[0] for e in answered)
    shown = Counter(
        next(
            f"sender{u}@example.net"
            for u in range(USERS)
            if f"sender{u}@example.net " in text_of(m)
        )
        for m in finals
    )
    assert shown == asked
    for sshd in servers.values():
        assert "no more sessions" not in sshd.log_text()  # sshd's words for a refused session

    ack_s = [a for _, _, a in acks]
    answer_s = [e.duration_s for e in answered]
    with capsys.disabled():
        print(
            f"\n[slack load] {len(commands)} commands from {USERS} users, HTTP mode, 2 sshd "
            f"(MaxSessions={MAX_SESSIONS}), rate limit {PER_MINUTE}/min: "
            f"ack p50 {statistics.median(ack_s) * 1000:.0f} ms, p95 {p95(ack_s) * 1000:.0f} ms; "
            f"full answer p50 {statistics.median(answer_s):.2f} s, p95 {p95(answer_s):.2f} s"
        )
