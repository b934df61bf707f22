"""The Bolt app: its listeners, and what they share.

Strategy: `build_app` assembles one `MailtraceBot` — the settings, the limits, the caches, the
audit log and the people directory — and registers its desks on a Bolt `AsyncApp`: the
/mailtrace command (`command`), the "Show log lines" button (`showlines`) and the watch buttons
(`watching`). The bot answers the questions every desk asks: the asker's language, whether they
may ask (within the acknowledgement's budget), and how a request is recorded: one audit entry
and one service-log line each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import ConfigError
from bot.i18n import Language, language
from bot.render.empty import DEFAULT_CONTACT
from bot.result import SearchResult
from bot.settings import Settings, SlackConfig
from bot.slack.access import AccessPolicy, Decision, log_access
from bot.slack.audit import AuditEntry, AuditLog, Outcome, search_counts
from bot.slack.command import CommandDesk
from bot.slack.directory import Directory, Workspace
from bot.slack.ratelimit import RateLimiter
from bot.slack.rawlines import RawLinesCache
from bot.slack.running import RunningSearches
from bot.slack.showlines import LinesDesk
from bot.slack.watching import WatchDesk
from bot.slack.webapi import api_base_url, build_client
from bot.sources.source import LogSource
from parsers.i18n import N_

logger = logging.getLogger("mailtrace.slack")

ACCESS_BUDGET_S = 2.0  # Slack wants the acknowledgement within 3 s
PROGRESS_EVERY_S = 5.0

SourcesFactory = Callable[[], Sequence[LogSource]]


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_app(
    settings: Settings,
    sources_factory: SourcesFactory,
    *,
    client: AsyncWebClient | None = None,
    token: str | None = None,
    signing_secret: str = "",
    clock: Callable[[], datetime] = utc_now,
    running: RunningSearches | None = None,
    audit: AuditLog | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    progress_every_s: float = PROGRESS_EVERY_S,
    workspace: Mapping[str, Any] | None = None,
) -> AsyncApp:
    """The Bolt app with the /mailtrace command and the "Show log lines" button.

    Pass `client` (tests point one at a fake Slack with `build_client(token, base_url)`) or
    `token` (a client is built for the configured API URL). `signing_secret` verifies HTTP-mode
    requests (Socket Mode needs none). `sources_factory` returns the log sources a search uses;
    `running` lets the caller drain searches at shutdown; `clock` is "now" for query dates;
    a search that takes longer than `progress_every_s` updates its parent message that often.
    `workspace` is the bot's auth.test answer (asked on first use when not given): who counts
    as a member of the installing workspace.
    """
    if client is None:
        if not token:
            raise ConfigError("build_app needs a Web API client or a bot token")
        client = build_client(token, api_base_url(settings))
    bot = MailtraceBot(
        settings,
        sources_factory,
        client=client,
        clock=clock,
        running=(
            running
            if running is not None
            else RunningSearches((settings.slack or SlackConfig()).max_concurrent)
        ),
        audit=audit if audit is not None else AuditLog.from_settings(settings),
        monotonic=monotonic,
        workspace=None if workspace is None else Workspace.from_auth_test(workspace),
    )
    bot.progress_every_s = progress_every_s
    app = AsyncApp(
        client=client,
        signing_secret=signing_secret,
        name="mailtrace",
        logger=logging.getLogger("mailtrace.bolt"),
    )
    bot.command.register(app)
    bot.lines.register(app)
    bot.watches.register(app)
    with contextlib.suppress(RuntimeError):  # no event loop yet: started by the first watch
        bot.watches.start()
    app.error(bot.on_error)
    return app


class MailtraceBot:
    """The listeners and what they share: settings, limits, caches, the audit log."""

    def __init__(
        self,
        settings: Settings,
        sources_factory: SourcesFactory,
        *,
        client: AsyncWebClient,
        clock: Callable[[], datetime],
        running: RunningSearches,
        audit: AuditLog,
        monotonic: Callable[[], float],
        workspace: Workspace | None = None,
    ) -> None:
        config = settings.slack or SlackConfig()
        self.contact = config.contact or DEFAULT_CONTACT
        self.settings = settings
        self.sources_factory = sources_factory
        self.clock = clock
        self.monotonic = monotonic
        self.running = running
        self.audit = audit
        self.directory = Directory(client, settings.zone, monotonic=monotonic, workspace=workspace)
        self.access = AccessPolicy(config, self.directory)
        self.limiter = RateLimiter(config.rate_limit_per_minute, monotonic=monotonic)
        self.raw_lines = RawLinesCache(monotonic=monotonic)
        self.command = CommandDesk(self)
        self.lines = LinesDesk(self)
        self.progress_every_s = PROGRESS_EVERY_S
        self.watches = WatchDesk(self, client)
        log_access(config, workspace)

    async def on_error(self, error: Exception, body: dict[str, Any]) -> None:
        """Bolt calls this for exceptions that escape a listener (ours catch their own)."""
        logger.error(
            "listener_failed type=%s error=%r", body.get("type") or body.get("command"), error
        )

    async def _language(self, user: str) -> Language:
        """The configured language, else the asker's Slack locale."""
        fixed = (self.settings.slack or SlackConfig()).language
        return language(fixed) if fixed else await self.directory.language_of(user)

    def _known_language(self, user: str) -> Language:
        """As `_language`, without a Slack call (before the 3-second ack)."""
        fixed = (self.settings.slack or SlackConfig()).language
        return language(fixed) if fixed else self.directory.cached_language(user)

    async def _check_access(self, user: str, channel: str) -> Decision:
        try:
            return await asyncio.wait_for(self.access.check(user, channel), ACCESS_BUDGET_S)
        except TimeoutError:
            return Decision(
                allowed=False,
                reason="access check timed out",
                message=N_("Slack was too slow to tell me whether you may ask. Please try again."),
            )

    def _record(
        self,
        user: str,
        channel: str,
        query: str = "",
        outcome: Outcome = Outcome.FAILED,
        started: float = 0.0,
        *,
        allowed: bool = True,
        reason: str = "",
        result: SearchResult | None = None,
        delivery: str = "",
        action: str = "command",
    ) -> None:
        servers, counts = search_counts(result)
        duration = round(self.monotonic() - started, 3)
        self.audit.record(
            AuditEntry(
                user=user,
                channel=channel,
                action=action,
                query=query,
                outcome=outcome,
                allowed=allowed,
                reason=reason,
                servers=servers,
                counts=counts,
                duration_s=duration,
                delivery=delivery,
            )
        )
        logger.info(
            "request action=%s user=%s channel=%s outcome=%s duration_s=%s messages=%s",
            action,
            user,
            channel,
            outcome.value,
            duration,
            counts.get("messages", "-"),
        )
