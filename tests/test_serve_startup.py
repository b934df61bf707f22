"""`mailtrace serve` start-up and shutdown as an orchestrator sees them: a real process, the fake
Slack, real signals. Refused credentials end the start with one line and status 2; an unreachable
Slack is waited for (with /healthz saying so); SIGTERM and SIGINT end the process in time."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from bot.slack.serve import SHUTDOWN_BUDGET_S
from tests.fakeslack import FakeSlack, signed_slash_command_request
from tests.test_slack_serve import (
    APP_TOKEN,
    BOT_TOKEN,
    SIGNING_SECRET,
    ServeProcess,
    serve_process,
    wait_for_thread,
    write_config,
)

# `docker stop` sends SIGKILL 10 s after SIGTERM: the process must be gone before that.
DOCKER_STOP_S = 10.0
SOCKET_ENV = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN}
HTTP_ENV = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET}


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(valid_tokens=[BOT_TOKEN, APP_TOKEN]) as fake_slack:
        yield fake_slack


def mailtrace_lines(serving: ServeProcess) -> list[str]:
    """What the CLI itself wrote (not the key=value service log)."""
    return [line for line in serving.stderr if line.startswith("mailtrace:")]


async def exit_status(serving: ServeProcess, within: float = DOCKER_STOP_S) -> int:
    async with asyncio.timeout(within):
        return await serving.process.wait()


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port nothing listens on (connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    yield port


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A loopback port that accepts connections and never answers (a hung Slack)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


async def health_of(port: int) -> tuple[int, dict[str, object]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/healthz") as response,
    ):
        return response.status, await response.json()


def port_of(line: str) -> int:
    return int(line.split(" port=")[1].split()[0])


@pytest.mark.parametrize(
    "error", ["invalid_auth", "not_authed", "account_inactive", "not_allowed_token_type"]
)
@pytest.mark.parametrize("env", [SOCKET_ENV, HTTP_ENV], ids=["socket", "http"])
async def test_a_bot_token_slack_refuses_ends_the_start_with_one_line(
    fake: FakeSlack, tmp_path: Path, error: str, env: dict[str, str]
) -> None:
    """auth.test refusing the bot token, in either mode, ends serve with one line and status 2."""
    fake.fail_next("auth.test", error)
    async with serve_process(write_config(tmp_path, fake), env) as serving:
        status = await exit_status(serving)
    assert status == 2
    assert mailtrace_lines(serving) == [
        f"mailtrace: configuration error: Slack refused SLACK_BOT_TOKEN ({error}); check the "
        "token (docs/slack.md: Tokens)"
    ]
    assert not any("Traceback" in line for line in serving.stderr)


@pytest.mark.parametrize("error", ["invalid_auth", "account_inactive", "not_allowed_token_type"])
async def test_an_app_token_slack_refuses_ends_the_start_with_one_line(
    tmp_path: Path, error: str
) -> None:
    """apps.connections.open refusing the app-level token ends Socket Mode serve with status 2
    instead of retrying for ever."""
    async with FakeSlack(valid_tokens=[BOT_TOKEN, APP_TOKEN]) as fake:
        fake.fail_next("apps.connections.open", error)
        async with serve_process(write_config(tmp_path, fake), SOCKET_ENV) as serving:
            status = await exit_status(serving)
    assert status == 2
    assert mailtrace_lines(serving) == [
        f"mailtrace: configuration error: Slack refused SLACK_APP_TOKEN ({error}); check the "
        "token (docs/slack.md: Tokens)"
    ]
    assert not any("Traceback" in line or "exc=" in line for line in serving.stderr)


async def test_an_unknown_app_token_is_refused_not_retried(tmp_path: Path) -> None:
    """An app-level token Slack does not know (invalid_auth from the fake's token check) ends
    the start with status 2."""
    async with FakeSlack(valid_tokens=[BOT_TOKEN, APP_TOKEN]) as fake:
        env = {**SOCKET_ENV, "SLACK_APP_TOKEN": "xapp-not-this-one"}
        async with serve_process(write_config(tmp_path, fake), env) as serving:
            status = await exit_status(serving)
    assert status == 2
    assert "(invalid_auth)" in mailtrace_lines(serving)[0]


async def test_slack_unreachable_at_start_is_retried_until_it_comes_back(
    tmp_path: Path,
) -> None:
    """With Slack down at start, serve retries with backoff, logs each failure as one readable
    line, answers 503 on /healthz, then serves once Slack is back on the same address."""
    async with FakeSlack(valid_tokens=[BOT_TOKEN, APP_TOKEN]) as first:
        config = write_config(tmp_path, first)
        port = first.port
    # Slack is gone: nothing listens on its port any more.
    async with serve_process(config, HTTP_ENV) as serving:
        health_port = port_of(await serving.wait_for_log("listening mode=http"))
        failure = await serving.wait_for_log("slack_unreachable")
        status, body = await health_of(health_port)
        assert (status, body["status"]) == (503, "starting")
        async with FakeSlack(valid_tokens=[BOT_TOKEN, APP_TOKEN], port=port) as fake:
            await serving.wait_for_log("serving mode=http", timeout=30)
            status, body = await health_of(health_port)
            assert (status, body["status"]) == (200, "ok")
            body_text, headers = signed_slash_command_request(
                SIGNING_SECRET,
                text="sender2@example.net 2024-05-13",
                user_id="U1",
                channel_id="C1",
                response_url=fake.response_url("r1"),
            )
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    f"http://127.0.0.1:{health_port}/slack/events",
                    data=body_text,
                    headers=headers,
                ) as response,
            ):
                assert response.status == 200
            [reply] = await wait_for_thread(fake)
            assert await serving.stop() == 0
    assert f'error="cannot connect to 127.0.0.1:{port}: ' in failure
    assert "retry_in_s=" in failure
    assert reply["blocks"][0]["text"]["text"].startswith("*✅ Delivered · sender2@example.net")
    assert not any("Traceback" in line or "exc=" in line for line in serving.stderr)


async def test_an_unresolvable_slack_host_is_one_readable_line(
    fake: FakeSlack, tmp_path: Path
) -> None:
    """A Slack API host that DNS cannot resolve is logged as one line naming the host."""
    config = write_config(
        tmp_path, fake, api_base_url="https://mailtrace-no-such-host.invalid/api/"
    )
    async with serve_process(config, HTTP_ENV) as serving:
        line = await serving.wait_for_log("slack_unreachable", timeout=60)
        assert await serving.stop(timeout=DOCKER_STOP_S) == 0
    assert 'error="cannot resolve host name mailtrace-no-such-host.invalid"' in line


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("env", [SOCKET_ENV, HTTP_ENV], ids=["socket", "http"])
async def test_a_signal_ends_a_start_that_waits_on_a_hung_slack(
    fake: FakeSlack, tmp_path: Path, signum: signal.Signals, env: dict[str, str]
) -> None:
    """SIGTERM or SIGINT while auth.test waits on a Slack that never answers ends the process
    within docker stop's 10 s, with status 0."""
    with silent_server() as port:
        config = write_config(tmp_path, fake, api_base_url=f"http://127.0.0.1:{port}/api/")
        async with serve_process(config, env) as serving:
            await serving.wait_for_log("listening mode=")
            await asyncio.sleep(0.5)  # auth.test is under way
            serving.process.send_signal(signum)
            status = await exit_status(serving)
    assert status == 0
    assert any("start_abandoned reason=signal" in line for line in serving.stderr)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_ends_a_start_in_backoff(
    tmp_path: Path, fake: FakeSlack, signum: signal.Signals
) -> None:
    """SIGTERM or SIGINT while serve waits between retries ends it within docker stop's 10 s."""
    with closed_port() as port:
        config = write_config(tmp_path, fake, api_base_url=f"http://127.0.0.1:{port}/api/")
        async with serve_process(config, SOCKET_ENV) as serving:
            await serving.wait_for_log("slack_unreachable")
            serving.process.send_signal(signum)
            status = await exit_status(serving)
    assert status == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_ends_a_socket_mode_connection_that_never_opens(
    fake: FakeSlack, tmp_path: Path, signum: signal.Signals
) -> None:
    """When apps.connections.open hands out a WebSocket URL that never answers (slack_sdk
    retries such a connection for ever), a signal still ends serve within 10 s."""
    with silent_server() as port:
        fake.on(
            "apps.connections.open", lambda call: {"ok": True, "url": f"ws://127.0.0.1:{port}/"}
        )
        async with serve_process(write_config(tmp_path, fake), SOCKET_ENV) as serving:
            await serving.wait_for_log("starting mode=socket")
            await fake.wait_for_call("apps.connections.open", count=2)  # ours, then slack_sdk's
            serving.process.send_signal(signum)
            status = await exit_status(serving)
    assert status == 0


def test_the_shutdown_watchdog_ends_a_stuck_process() -> None:
    """Once armed by a signal, the watchdog ends the process even when its event loop is
    blocked and will never look at the signal again."""
    script = (
        "import time\n"
        "from bot.slack.serve import _arm_watchdog\n"
        "_arm_watchdog(0.5)\n"
        "time.sleep(60)\n"  # stands in for a loop stuck in a blocking call
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=SHUTDOWN_BUDGET_S
    )
    assert done.returncode == 1
