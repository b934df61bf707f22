"""`mailtrace serve`: run the Slack bot until SIGTERM or SIGINT.

Strategy: secrets come from the environment (see secrets.py). /healthz listens first and says
"starting" (503); then the tokens are checked (startup.py): one Slack refuses is a configuration
error (exit 2), an unreachable Slack is retried with backoff for as long as it takes.
With an app-level token the bot connects out over Socket Mode (no public URL; slack_sdk
reconnects by itself and a watcher logs every change of state); without one it serves Slack's
HTTP requests on POST /slack/events, verified with the signing secret. Both modes serve
GET /healthz. On SIGTERM/SIGINT new requests are answered "restarting", running searches get a
short deadline to finish, the rest are cancelled (their threads say so), then the connection and
the SSH pool are closed. Each step has a bound, and the bounds add up to SHUTDOWN_BUDGET_S: less
than the 10 s `docker stop` waits before SIGKILL; a watchdog thread armed by the first signal
ends the process when the budget runs out, whatever the event loop is stuck on. A signal during
start-up abandons it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

from bot.errors import ConfigError
from bot.settings import Settings, SlackConfig
from bot.slack.app import build_app
from bot.slack.logs import configure_logging
from bot.slack.running import RunningSearches
from bot.slack.secrets import (
    APP_TOKEN,
    BOT_TOKEN,
    SIGNING_SECRET,
    SlackSecrets,
    load_secrets,
)
from bot.slack.startup import check_app_token, check_bot_token
from bot.slack.webapi import api_base_url, build_client
from bot.sources.factory import build_sources, needs_ssh

logger = logging.getLogger("mailtrace.serve")
_T = TypeVar("_T")

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
        self.ready = False  # Slack accepted the credentials and the bot is serving
        self.connected: bool | None = None if mode == "socket" else True
        self.changed_at = time.monotonic()

    def set_ready(self) -> None:
        self.ready = True
        self.changed_at = time.monotonic()

    def set_connected(self, connected: bool) -> None:
        if connected != self.connected:
            self.connected = connected
            self.changed_at = time.monotonic()

    def report(self) -> tuple[int, dict[str, Any]]:
        since = round(time.monotonic() - self.changed_at, 1)
        healthy = (
            self.ready
            and self.running.accepting
            and (self.connected is True or since < SOCKET_STALE_S)  # a reconnect takes a moment
        )
        if not self.running.accepting:
            status = "stopping"
        elif not self.ready:
            status = "starting"
        else:
            status = "ok" if healthy else "down"
        body = {
            "status": status,
            "mode": self.mode,
            "slack_connected": self.connected,
            "state_for_s": since,
            "searches_running": len(self.running),
        }
        return (200 if healthy else 503), body


class AppSlot:
    """The Bolt app once start-up has built it; Slack's requests before that get 503."""

    def __init__(self, app: AsyncApp | None = None) -> None:
        self.app = app


def build_web_app(app: AsyncApp | AppSlot | None, health: Health) -> web.Application:
    """aiohttp routes: Slack's requests (HTTP mode, when `app` is given) and /healthz."""
    web_app = web.Application()

    async def healthz(request: web.Request) -> web.Response:
        status, body = health.report()
        return web.json_response(body, status=status)

    web_app.router.add_get(HEALTH_PATH, healthz)
    if app is not None:
        slot = app if isinstance(app, AppSlot) else AppSlot(app)

        async def events(request: web.Request) -> web.Response:
            if slot.app is None:
                return web.json_response({"error": "starting"}, status=503)
            bolt_request = await to_bolt_request(request)
            return await to_aiohttp_response(await slot.app.async_dispatch(bolt_request))

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


class Stopped(Exception):
    """A signal arrived while start-up was still waiting (on Slack, on a connection)."""


async def until_stopped(step: Awaitable[_T], stop: asyncio.Event) -> _T:
    """`step`'s result, unless `stop` is set first: then the step is cancelled (Stopped)."""
    task = asyncio.ensure_future(step)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        if not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=CLOSE_WAIT_S)
    if task.cancelled():
        raise Stopped
    return task.result()


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
    mode = "socket" if secrets.socket_mode else "http"
    running = RunningSearches(config.max_concurrent)
    health = Health(mode, running)
    slot = AppSlot()
    runner = await _listen(slot if mode == "http" else None, health, config)
    pool = None
    try:
        identity = await until_stopped(check_bot_token(client, url), stop)
        if secrets.app_token is not None:
            await until_stopped(check_app_token(secrets.app_token, url), stop)
        logger.info(
            "starting mode=%s api=%s team=%s bot_user=%s servers=%s max_concurrent=%s",
            mode,
            url,
            identity.get("team_id"),
            identity.get("user_id"),
            ",".join(s.name for s in settings.servers) or "-",
            config.max_concurrent,
        )
        if needs_ssh(settings):
            from bot.sources.ssh import SSHPool

            pool = SSHPool(settings)
        sources = build_sources(settings, pool)
        app = build_app(
            settings,
            lambda: sources,
            client=client,
            signing_secret=secrets.signing_secret or "",
            running=running,
            workspace=identity,
        )
        if secrets.app_token is not None:
            await _run_socket_mode(app, secrets.app_token, health, stop)
        else:
            slot.app = app
            health.set_ready()
            logger.info("serving mode=http path=%s", EVENTS_PATH)
            await stop.wait()
            await _drain(running)
    except Stopped:
        logger.info("start_abandoned reason=signal")
    finally:
        if runner is not None:
            await runner.cleanup()
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), POOL_CLOSE_S)
            except TimeoutError:
                logger.warning("ssh_pool_close_timed_out after_s=%s", POOL_CLOSE_S)
    logger.info("stopped")
    return 0


async def _listen(
    slot: AppSlot | None, health: Health, config: SlackConfig
) -> web.AppRunner | None:
    """Serve /healthz (and, in HTTP mode, Slack's requests) from the very start."""
    try:
        runner, (host, port) = await start_web(
            build_web_app(slot, health), config.http_host, config.http_port
        )
    except OSError as exc:
        if slot is not None:  # HTTP mode cannot work without its port
            raise ConfigError(
                f"cannot listen on {config.http_host}:{config.http_port}: {exc.strerror}"
            ) from exc
        logger.warning(
            "health_endpoint_unavailable host=%s port=%s error=%s",
            config.http_host,
            config.http_port,
            exc.strerror,
        )
        return None
    path = EVENTS_PATH if slot is not None else HEALTH_PATH
    logger.info(
        "listening mode=%s host=%s port=%s path=%s",
        "http" if slot is not None else "health",
        host,
        port,
        path,
    )
    return runner


async def _run_socket_mode(
    app: AsyncApp, app_token: str, health: Health, stop: asyncio.Event
) -> None:
    handler = AsyncSocketModeHandler(app, app_token=app_token)
    handler.client.on_close_listeners.append(_logged("socket_closed", health))
    handler.client.on_error_listeners.append(_logged("socket_error", health))
    watcher = None
    try:
        # slack_sdk retries a failing connection by itself (every ping interval), for ever.
        await until_stopped(handler.connect_async(), stop)  # type: ignore[no-untyped-call]
        health.set_connected(True)
        health.set_ready()
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
            _arm_watchdog(SHUTDOWN_BUDGET_S)
        stop.set()

    return handle


def _arm_watchdog(after_s: float) -> None:
    """Whatever the event loop is stuck on, the process ends `after_s` after the first signal."""

    def overrun() -> None:
        logger.error("shutdown_overran after_s=%s exiting=now", after_s)
        logging.shutdown()
        os._exit(1)

    timer = threading.Timer(after_s, overrun)
    timer.daemon = True
    timer.start()
