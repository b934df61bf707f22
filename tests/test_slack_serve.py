"""`mailtrace serve` as a real process against the fake Slack; secrets, logs and health."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.errors import ConfigError
from bot.slack.command import CANCEL_NOTICE_S, SEARCH_STOP_WAIT_S
from bot.slack.health import is_healthy
from bot.slack.logs import KeyValueFormatter, redact
from bot.slack.running import RunningSearches
from bot.slack.secrets import load_secrets
from bot.slack.serve import (
    CANCEL_WAIT_S,
    CLOSE_WAIT_S,
    POOL_CLOSE_S,
    SHUTDOWN_BUDGET_S,
    SHUTDOWN_GRACE_S,
    SOCKET_STALE_S,
    Health,
    build_web_app,
    start_web,
)
from tests.fakeslack import FakeSlack, signed_slash_command_request, slash_command_payload

BOT_TOKEN = "xoxb-serve-test-bot-token"
APP_TOKEN = "xapp-serve-test-app-token"
SIGNING_SECRET = "serve-test-signing-secret"
HOWTO_LOG = Path(__file__).parent / "fixtures" / "howto" / "maillog"


# ---------------------------------------------------------------------- secrets


def test_missing_bot_token_is_a_clear_error() -> None:
    """Without SLACK_BOT_TOKEN the error names the variable and the _FILE alternative."""
    with pytest.raises(ConfigError, match=r"SLACK_BOT_TOKEN is not set.*SLACK_BOT_TOKEN_FILE"):
        load_secrets({"SLACK_APP_TOKEN": APP_TOKEN})


def test_a_mode_must_be_chosen() -> None:
    """A bot token alone is not enough: Socket Mode needs the app token, HTTP the secret."""
    with pytest.raises(ConfigError, match=r"SLACK_APP_TOKEN.*SLACK_SIGNING_SECRET"):
        load_secrets({"SLACK_BOT_TOKEN": BOT_TOKEN})


def test_swapped_tokens_are_refused() -> None:
    """An app token where the bot token belongs (and vice versa) is caught at startup."""
    with pytest.raises(ConfigError, match="must be a bot token"):
        load_secrets({"SLACK_BOT_TOKEN": APP_TOKEN, "SLACK_APP_TOKEN": BOT_TOKEN})
    with pytest.raises(ConfigError, match="must be an app-level token"):
        load_secrets({"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": BOT_TOKEN})


@pytest.mark.parametrize("blank", ["", " ", "  \t\n"], ids=["empty", "space", "whitespace"])
def test_blank_secrets_count_as_unset(blank: str) -> None:
    """A variable holding only whitespace is unset: a blank signing secret is a clear startup
    error, never HTTP mode with an empty secret."""
    with pytest.raises(ConfigError, match=r"set SLACK_APP_TOKEN .* or SLACK_SIGNING_SECRET"):
        load_secrets({"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": blank})
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN is not set"):
        load_secrets({"SLACK_BOT_TOKEN": blank, "SLACK_SIGNING_SECRET": SIGNING_SECRET})
    secrets = load_secrets(
        {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": blank, "SLACK_SIGNING_SECRET": "s"}
    )
    assert not secrets.socket_mode
    assert secrets.signing_secret == "s"


def test_secrets_come_from_files_and_never_show_in_repr(tmp_path: Path) -> None:
    """*_FILE variables are read (whitespace stripped); the values never appear in a repr."""
    token_file = tmp_path / "bot-token"
    token_file.write_text(BOT_TOKEN + "\n")
    secrets = load_secrets(
        {"SLACK_BOT_TOKEN_FILE": str(token_file), "SLACK_SIGNING_SECRET": SIGNING_SECRET}
    )
    assert secrets.bot_token == BOT_TOKEN
    assert not secrets.socket_mode
    assert BOT_TOKEN not in repr(secrets)
    assert SIGNING_SECRET not in repr(secrets)
    with pytest.raises(ConfigError, match="not both"):
        load_secrets({"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_BOT_TOKEN_FILE": str(token_file)})


def test_shutdown_fits_in_docker_stops_ten_seconds() -> None:
    """Grace, cancel wait and closing the connections add up to less than the 10 s `docker stop`
    waits before SIGKILL, and a cancelled search says so within the cancel wait."""
    assert SHUTDOWN_BUDGET_S == SHUTDOWN_GRACE_S + CANCEL_WAIT_S + 2 * CLOSE_WAIT_S + POOL_CLOSE_S
    assert SHUTDOWN_BUDGET_S <= 9.0
    assert SEARCH_STOP_WAIT_S + CANCEL_NOTICE_S <= CANCEL_WAIT_S


# ---------------------------------------------------------------------- logs and health


def test_log_lines_are_key_value_single_lines_with_tokens_redacted() -> None:
    """A record with a traceback is one line; a token anywhere in it is masked."""
    formatter = KeyValueFormatter()
    try:
        raise ValueError(f"bad token {BOT_TOKEN}")
    except ValueError:
        record = logging.LogRecord(
            "mailtrace.slack", logging.ERROR, __file__, 1, "search_failed ref=%s", ("ab12",), None
        )
        record.exc_info = sys.exc_info()
    line = formatter.format(record)
    assert "\n" not in line
    assert " level=error logger=mailtrace.slack search_failed ref=ab12 exc=" in line
    assert BOT_TOKEN not in line
    assert "xoxb-[redacted]" in line
    assert redact(f"app {APP_TOKEN}") == "app xapp-[redacted]"


async def test_health_endpoint_reports_socket_state() -> None:
    """/healthz is 200 while Slack is connected, 503 after a long disconnection."""
    running = RunningSearches(1)
    health = Health("socket", running)
    assert health.report()[0] == 503  # starting: not yet connected
    health.set_ready()
    health.set_connected(True)
    runner, (host, port) = await start_web(build_web_app(None, health), "127.0.0.1", 0)
    url = f"http://{host}:{port}/healthz"
    try:
        assert await asyncio.to_thread(is_healthy, url)
        health.set_connected(False)
        health.changed_at -= SOCKET_STALE_S + 1
        assert not await asyncio.to_thread(is_healthy, url)
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            body = await response.json()
        assert body["status"] == "down"
        assert body["slack_connected"] is False
    finally:
        await runner.cleanup()


# ---------------------------------------------------------------------- the real process


@dataclass
class ServeProcess:
    process: asyncio.subprocess.Process
    stderr: list[str] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for_log(self, text: str, timeout: float = 20.0) -> str:
        async with asyncio.timeout(timeout):
            while True:
                for line in self.stderr:
                    if text in line:
                        return line
                if self.process.returncode is not None:
                    raise AssertionError("serve exited:\n" + "\n".join(self.stderr))
                self.changed.clear()
                await self.changed.wait()

    async def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, then the exit status (graceful shutdown must not need SIGKILL)."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(timeout):
            return await self.process.wait()


def write_config(tmp_path: Path, fake: FakeSlack, **slack: Any) -> Path:
    """A configuration with one local server on the how-to log, pointing at the fake Slack."""
    config = {
        "default_days": None,
        "servers": [{"name": "mx1", "local": True, "logs": [str(HOWTO_LOG)], "year": 2024}],
        "slack": {
            "api_base_url": fake.api_url,
            "audit_log": "audit.jsonl",
            "http_host": "127.0.0.1",
            "http_port": 0,
            **slack,
        },
    }
    path = tmp_path / "mailtrace.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


@contextlib.asynccontextmanager
async def serve_process(config: Path, env: dict[str, str]) -> AsyncIterator[ServeProcess]:
    """`python -m bot.cli serve --config CONFIG` with only the given Slack variables set."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "serve",
        "--config",
        str(config),
        env={**clean, **env},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    serving = ServeProcess(process)

    async def read() -> None:
        assert process.stderr is not None
        async for raw in process.stderr:
            serving.stderr.append(raw.decode(errors="replace").rstrip("\n"))
            serving.changed.set()
        serving.changed.set()

    reader = asyncio.create_task(read())
    try:
        yield serving
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await reader


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(valid_tokens=[BOT_TOKEN, APP_TOKEN]) as fake_slack:
        yield fake_slack


async def wait_for_thread(fake: FakeSlack, replies: int = 1) -> list[dict[str, Any]]:
    def done() -> list[dict[str, Any]] | None:
        posts = [c.params for c in fake.calls_to("chat.postMessage") if c.params.get("thread_ts")]
        return posts if len(posts) >= replies else None

    return await fake.wait_until(done, 20.0, "the thread replies")


async def test_serve_in_socket_mode_answers_and_stops_cleanly(
    fake: FakeSlack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`mailtrace serve` with SLACK_APP_TOKEN connects over Socket Mode, answers a command in a
    thread, audits it, never logs a token, and exits 0 on SIGTERM."""
    config = write_config(tmp_path, fake)
    env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN}
    async with serve_process(config, env) as serving:
        await serving.wait_for_log("socket_connected")
        await fake.wait_for_socket_client()
        payload = slash_command_payload(
            text="sender2@example.net 2024-05-13",
            user_id="U1",
            channel_id="C1",
            response_url=fake.response_url("r1"),
        )
        started = time.monotonic()
        envelope = await fake.send_socket_envelope("slash_commands", payload)
        ack = await fake.wait_for_ack(envelope)
        ack_s = time.monotonic() - started
        [reply] = await wait_for_thread(fake)
        total_s = time.monotonic() - started
        with capsys.disabled():
            print(
                f"\n[slack timing] mailtrace serve, Socket Mode: ack {ack_s * 1000:.0f} ms, "
                f"complete answer {total_s * 1000:.0f} ms"
            )
        status = await serving.stop()
    assert status == 0
    assert ack["payload"]["text"].startswith("🔎 Searching")
    assert (
        "✅ recipient2@example.org — delivered to the mailbox on mx1"
        in reply["blocks"][0]["text"]["text"]
    )
    [entry] = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert entry["outcome"] == "answered"
    assert entry["servers"] == ["mx1"]
    logs = "\n".join(serving.stderr)
    assert "starting mode=socket" in logs
    assert "stopped" in logs
    assert BOT_TOKEN not in logs
    assert APP_TOKEN not in logs
    assert all(line.startswith("time=") for line in serving.stderr)


async def test_serve_in_http_mode_verifies_answers_and_reports_health(
    fake: FakeSlack, tmp_path: Path
) -> None:
    """Without an app token, `mailtrace serve` listens for signed requests and serves /healthz."""
    config = write_config(tmp_path, fake)
    env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET}
    async with serve_process(config, env) as serving:
        line = await serving.wait_for_log("listening mode=http")
        await serving.wait_for_log("serving mode=http")
        port = int(line.split(" port=")[1].split()[0])
        base = f"http://127.0.0.1:{port}"
        body, headers = signed_slash_command_request(
            SIGNING_SECRET,
            text="sender2@example.net 2024-05-13",
            user_id="U1",
            channel_id="C1",
            response_url=fake.response_url("r1"),
        )
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{base}/slack/events", data=body, headers=headers) as resp:
                assert resp.status == 200
                assert (await resp.json())["response_type"] == "ephemeral"
            async with session.get(f"{base}/healthz") as resp:
                assert resp.status == 200
                assert (await resp.json())["mode"] == "http"
        [reply] = await wait_for_thread(fake)
        status = await serving.stop()
    assert status == 0
    assert (
        "✅ recipient2@example.org — delivered to the mailbox on mx1"
        in reply["blocks"][0]["text"]["text"]
    )


async def test_serve_refuses_to_start_with_a_token_slack_rejects(
    fake: FakeSlack, tmp_path: Path
) -> None:
    """A bot token that auth.test refuses stops the start with a clear message and status 2."""
    config = write_config(tmp_path, fake)
    env = {"SLACK_BOT_TOKEN": "xoxb-revoked", "SLACK_APP_TOKEN": APP_TOKEN}
    async with serve_process(config, env) as serving:
        async with asyncio.timeout(20):
            status = await serving.process.wait()
        await serving.wait_for_log("invalid_auth")
    assert status == 2
    assert "Slack refused SLACK_BOT_TOKEN (invalid_auth)" in "\n".join(serving.stderr)
    assert not fake.calls_to("apps.connections.open")


async def test_serve_without_tokens_says_what_to_set(fake: FakeSlack, tmp_path: Path) -> None:
    """With no Slack token in the environment, serve exits 2 naming the variable to set."""
    config = write_config(tmp_path, fake)
    async with serve_process(config, {}) as serving:
        async with asyncio.timeout(20):
            status = await serving.process.wait()
        await serving.wait_for_log("SLACK_BOT_TOKEN")
    assert status == 2
    assert "configuration error: SLACK_BOT_TOKEN is not set" in "\n".join(serving.stderr)
    assert not fake.calls
