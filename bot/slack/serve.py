"""`mailtrace serve`: run the Slack bot until SIGTERM or SIGINT.

Strategy: secrets come from the environment (see secrets.py); the bot token is checked with
auth.test before anything listens, so a wrong token is a clear startup error, not a silent bot.
With an app-level token the bot connects out over Socket Mode (no public URL; slack_sdk
reconnects by itself and a watcher logs every change of state); without one it serves Slack's
HTTP requests on POST /slack/events, verified with the signing secret. Both modes serve
GET /healthz. On SIGTERM/SIGINT new requests are answered "restarting", running searches get a
short deadline to finish, the rest are cancelled (their threads say so), then the connection and
the SSH pool are closed. Each step has a bound, and the bounds add up to SHUTDOWN_BUDGET_S: less
than the 10 s `docker stop` waits before SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import ConfigError, MailtraceError
from bot.settings import Settings, SlackConfig
from bot.slack.app import api_base_url, build_app, build_client
from bot.slack.delivery import SLACK_CALL_FAILED
from bot.slack.logs import configure_logging
from bot.slack.running import RunningSearches
from bot.slack.secrets import (
    APP_TOKEN,
    BOT_TOKEN,
    SIGNING_SECRET,
    SlackSecrets,
    load_secrets,
)
from bot.sources.factory import build_sources, needs_ssh

logger = logging.getLogger("mailtrace.serve")

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
# Shutdown, step by step (Docker sends SIGKILL 10 s after SIGTERM):
SHUTDOWN_GRACE_S = 5.0  # running searches may finish
CANCEL_WAIT_S = 2.0  # the rest are cancelled and say so in their threads
CLOSE_WAIT_S = 0.5  # the Socket Mode connection; the web server (each)
POOL_CLOSE_S = 1.0  # the SSH connections
SHUTDOWN_BUDGET_S = SHUTDOWN_GRACE_S + CANCEL_WAIT_S + 2 * CLOSE_WAIT_S + POOL_CLOSE_S  # 9 s
WATCH_EVERY_S = 5.0
SOCKET_STALE_S = 60.0  # Socket Mode: unhealthy after this long without a connection


def serve(settings: Settings) -> int:
    """Run the bot in the mode the environment selects; returns the process exit status."""
    configure_logging()
    secrets = load_secrets(os.environ)
    # Commands we run (grep, ssh helpers) need no Slack token: keep them out of their environment
    # (and stop Bolt from reading the bot token from there beside the client it is given).
    for name in (BOT_TOKEN, APP_TOKEN, SIGNING_SECRET):
        os.environ.pop(name, None)
    return asyncio.run(run_bot(settings, secrets))


class Health:
    """What /healthz reports: the mode, whether Slack is reachable, running searches."""

    def __init__(self, mode: str, running: RunningSearches) -> None:
        self.mode = mode
        self.running = running
        self.connected: bool | None = None if mode == "socket" else True
        self.changed_at = time.monotonic()

    def set_connected(self, connected: bool) -> None:
        if connected != self.connected:
            self.connected = connected
            self.changed_at = time.monotonic()

    def report(self) -> tuple[int, dict[str, Any]]:
        since = round(time.monotonic() - self.changed_at, 1)
        healthy = self.running.accepting and (
            self.connected is True or since < SOCKET_STALE_S  # a reconnect takes a moment
        )
        body = {
            "status": "ok" if healthy else ("stopping" if not self.running.accepting else "down"),
            "mode": self.mode,
            "slack_connected": self.connected,
            "state_for_s": since,
            "searches_running": len(self.running),
        }
        return (200 if healthy else 503), body


def build_web_app(app: AsyncApp | None, health: Health) -> web.Application:
    """aiohttp routes: Slack's requests (HTTP mode, when `app` is given) and /healthz."""
    web_app = web.Application()

    async def healthz(request: web.Request) -> web.Response:
        status, body = health.report()
        return web.json_response(body, status=status)

    web_app.router.add_get(HEALTH_PATH, healthz)
    if app is not None:

        async def events(request: web.Request) -> web.Response:
            bolt_request = await to_bolt_request(request)
            return await to_aiohttp_response(await app.async_dispatch(bolt_request))

        web_app.router.add_post(EVENTS_PATH, events)
    return web_app


async def start_web(
    web_app: web.Application, host: str, port: int
) -> tuple[web.AppRunner, tuple[str, int]]:
    """Listen on host:port (0: any free port); returns the runner and the bound address."""
    runner = web.AppRunner(
        web_app, handle_signals=False, access_log=None, shutdown_timeout=CLOSE_WAIT_S
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    bound = runner.addresses[0]
    return runner, (str(bound[0]), int(bound[1]))


async def check_token(client: AsyncWebClient, url: str) -> dict[str, Any]:
    """auth.test: who we are in Slack; a refused token is a ConfigError that says so."""
    try:
        response = await client.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error")
        raise ConfigError(f"Slack refused SLACK_BOT_TOKEN ({error}); check the token") from exc
    except SLACK_CALL_FAILED as exc:
        raise MailtraceError(f"cannot reach the Slack Web API at {url}: {exc!r}") from exc
    return dict(response.data) if isinstance(response.data, dict) else {}


async def run_bot(
    settings: Settings, secrets: SlackSecrets, *, stop: asyncio.Event | None = None
) -> int:
    """Serve until `stop` is set (SIGTERM and SIGINT set it); 0 after a clean shutdown."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, _stopper(stop, signum))
    config = settings.slack or SlackConfig()
    url = api_base_url(settings)
    client = build_client(secrets.bot_token, url)
    identity = await check_token(client, url)
    mode = "socket" if secrets.socket_mode else "http"
    logger.info(
        "starting mode=%s api=%s team=%s bot_user=%s servers=%s max_concurrent=%s",
        mode,
        url,
        identity.get("team_id"),
        identity.get("user_id"),
        ",".join(s.name for s in settings.servers) or "-",
        config.max_concurrent,
    )
    pool = None
    if needs_ssh(settings):
        from bot.sources.ssh import SSHPool

        pool = SSHPool(settings)
    try:
        sources = build_sources(settings, pool)
        running = RunningSearches(config.max_concurrent)
        app = build_app(
            settings,
            lambda: sources,
            client=client,
            signing_secret=secrets.signing_secret or "",
            running=running,
        )
        health = Health(mode, running)
        if secrets.app_token is not None:
            await _run_socket_mode(app, secrets.app_token, config, health, stop)
        else:
            await _run_http(app, config, health, stop)
    finally:
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), POOL_CLOSE_S)
            except TimeoutError:
                logger.warning("ssh_pool_close_timed_out after_s=%s", POOL_CLOSE_S)
    logger.info("stopped")
    return 0


async def _run_http(
    app: AsyncApp, config: SlackConfig, health: Health, stop: asyncio.Event
) -> None:
    try:
        runner, (host, port) = await start_web(
            build_web_app(app, health), config.http_host, config.http_port
        )
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {config.http_host}:{config.http_port}: {exc.strerror}"
        ) from exc
    logger.info("listening mode=http host=%s port=%s path=%s", host, port, EVENTS_PATH)
    try:
        await stop.wait()
        await _drain(health.running)
    finally:
        await runner.cleanup()


async def _run_socket_mode(
    app: AsyncApp, app_token: str, config: SlackConfig, health: Health, stop: asyncio.Event
) -> None:
    handler = AsyncSocketModeHandler(app, app_token=app_token)
    handler.client.on_close_listeners.append(_logged("socket_closed", health))
    handler.client.on_error_listeners.append(_logged("socket_error", health))
    runner = None
    try:
        runner, (host, port) = await start_web(
            build_web_app(None, health), config.http_host, config.http_port
        )
        logger.info("listening mode=health host=%s port=%s path=%s", host, port, HEALTH_PATH)
    except OSError as exc:
        logger.warning(
            "health_endpoint_unavailable host=%s port=%s error=%s",
            config.http_host,
            config.http_port,
            exc.strerror,
        )
    watcher = None
    try:
        try:
            await handler.connect_async()  # type: ignore[no-untyped-call]
        except SLACK_CALL_FAILED as exc:
            raise MailtraceError(f"cannot open the Socket Mode connection: {exc!r}") from exc
        health.set_connected(True)
        logger.info("socket_connected")
        watcher = asyncio.create_task(_watch(handler, health))
        await stop.wait()
        await _drain(health.running)
    finally:
        if watcher is not None:
            watcher.cancel()
            await asyncio.wait({watcher})
        try:
            await asyncio.wait_for(handler.close_async(), CLOSE_WAIT_S)  # type: ignore[no-untyped-call]
        except TimeoutError:
            logger.warning("socket_close_timed_out after_s=%s", CLOSE_WAIT_S)
        if runner is not None:
            await runner.cleanup()


async def _watch(handler: AsyncSocketModeHandler, health: Health) -> None:
    """Log each change of the Socket Mode connection (slack_sdk reconnects by itself)."""
    while True:
        await asyncio.sleep(WATCH_EVERY_S)
        try:
            connected = bool(await handler.client.is_connected())
        except Exception as exc:  # a watcher must not die; say what happened
            logger.warning("socket_check_failed error=%r", exc)
            connected = False
        if connected != health.connected:
            logger.log(
                logging.INFO if connected else logging.WARNING,
                "socket_%s after_s=%.0f",
                "reconnected" if connected else "disconnected",
                time.monotonic() - health.changed_at,
            )
            health.set_connected(connected)


def _logged(event: str, health: Health) -> Callable[[Any], Awaitable[None]]:
    async def listener(message: Any) -> None:
        health.set_connected(False)
        logger.warning("%s data=%r", event, getattr(message, "data", message))

    return listener


async def _drain(running: RunningSearches) -> None:
    count = len(running)
    logger.info("stopping searches_running=%s grace_s=%s", count, SHUTDOWN_GRACE_S)
    finished, cancelled = await running.drain(SHUTDOWN_GRACE_S, CANCEL_WAIT_S)
    if count:
        logger.info("searches_drained finished=%s cancelled=%s", finished, cancelled)


def _stopper(stop: asyncio.Event, signum: int) -> Callable[[], None]:
    def handle() -> None:
        if not stop.is_set():
            logger.info("signal_received signal=%s", signal.Signals(signum).name)
        stop.set()

    return handle
