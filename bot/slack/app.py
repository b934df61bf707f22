"""The Bolt app: `/mailtrace QUERY` answered in a thread, and the "Show log lines" button.

Strategy: everything that decides a command without touching a log server happens before the
acknowledgement and is quick — shutdown, access (bounded by a short budget), help, the query's
grammar, the rate limit — and a refusal or usage message *is* the acknowledgement (ephemeral).
Otherwise the acknowledgement is a short "searching" note and, in the same coroutine (Bolt has
already answered Slack), the answer follows: the asker's time zone, a parent message that shows
progress, the search under the global concurrency limit, the summary and one reply per message.
Every request ends in one audit entry; every failure ends in a message to the asker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import ConfigError, UsageError, failure_words
from bot.i18n import ENGLISH, Language, language
from bot.live_queue import check_live_queues
from bot.query import Query, parse_query, usage
from bot.render.empty import DEFAULT_CONTACT
from bot.render.slack import (
    escape,
    render_progress,
    render_thread,
    unescape,
)
from bot.render.view import build_view
from bot.result import SearchResult
from bot.search import choose_servers, run_search
from bot.settings import Settings, SlackConfig
from bot.slack.access import AccessPolicy, Decision
from bot.slack.audit import AuditEntry, AuditLog, Outcome, search_outcome
from bot.slack.delivery import Delivery
from bot.slack.directory import Directory, Workspace
from bot.slack.ratelimit import RateLimiter
from bot.slack.rawlines import RawLinesCache
from bot.slack.running import RunningSearches
from bot.slack.secrets import API_URL
from bot.slack.showlines import LinesDesk
from bot.slack.watching import WatchDesk
from bot.sources.source import LogSource
from parsers.i18n import N_

logger = logging.getLogger("mailtrace.slack")

COMMAND = "/mailtrace"
DEFAULT_API_URL = "https://slack.com/api/"
HELP_WORDS = frozenset({"", "help", "-h", "--help", "?", "usage"})
ACCESS_BUDGET_S = 2.0  # Slack wants the acknowledgement within 3 s
PROGRESS_EVERY_S = 5.0
EPHEMERAL = "ephemeral"  # acknowledgements are seen by the asker only
SHUTTING_DOWN = N_("mailtrace is restarting right now. Please ask again in a minute.")
CANCELLED = N_("mailtrace had to restart, so this search was stopped. Please ask again.")
# A cancelled search (shutdown) waits this long for the search to stop, then this long for its
# thread to say so: together within serve.CANCEL_WAIT_S.
SEARCH_STOP_WAIT_S = 0.5
CANCEL_NOTICE_S = 1.5

# Every Web API method the bot calls, with the bot scope it needs (the manifest must grant them;
# a test checks both the manifest and that no other method is called in bot/slack/).
SCOPES = {
    "auth.test": None,
    "apps.connections.open": None,  # app-level token (connections:write), Socket Mode only
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "users.info": "users:read",
    "usergroups.users.list": "usergroups:read",
    "files.getUploadURLExternal": "files:write",  # files_upload_v2
    "files.completeUploadExternal": "files:write",  # files_upload_v2
}
COMMAND_SCOPE = "commands"

SourcesFactory = Callable[[], Sequence[LogSource]]


def utc_now() -> datetime:
    return datetime.now(UTC)


def api_base_url(settings: Settings, environ: Mapping[str, str] = os.environ) -> str:
    """The Web API base URL: the setting, else $SLACK_API_URL, else Slack's; ends with '/'."""
    configured = settings.slack.api_base_url if settings.slack else None
    url = configured or environ.get(API_URL) or DEFAULT_API_URL
    return url if url.endswith("/") else url + "/"


def build_client(token: str, base_url: str = DEFAULT_API_URL) -> AsyncWebClient:
    """A Web API client that retries connection errors, 429 (after Retry-After) and 5xx."""
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )


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
    app.command(COMMAND)(bot.on_command)
    bot.lines.register(app)
    bot.watches.register(app)
    with contextlib.suppress(RuntimeError):  # no event loop yet: started by the first watch
        bot.watches.start()
    app.error(bot.on_error)
    return app


def log_access(config: SlackConfig, workspace: Workspace | None) -> None:
    """Say at start-up, in plain words, who may search."""
    team = workspace.team_id if workspace is not None else "the installing workspace"
    members = f"full members of {team}; guests and other organisations are refused"
    if not (config.allowed_users or config.allowed_usergroups or config.allowed_channels):
        logger.warning(
            'access_open who="every %s" where="any conversation" note="%s"',
            members.replace("full members", "full member", 1),
            "set slack.allowed_users / allowed_usergroups / allowed_channels to narrow it",
        )
        return
    who = "every " + members.replace("full members", "full member", 1)
    if config.allowed_users or config.allowed_usergroups:
        who = (
            f"users {','.join(config.allowed_users) or '-'} and members of user groups "
            f"{','.join(config.allowed_usergroups) or '-'} ({members})"
        )
    where = ",".join(config.allowed_channels) or "any conversation"
    logger.info('access_restricted who="%s" where="%s"', who, where)


def usage_message(error: str, lang: Language = ENGLISH) -> str:
    """A usage error as mrkdwn: its one line (with at most one example), and where help is."""
    where = lang.gettext("Type `/mailtrace help` for the whole grammar.")
    return f"{escape(error.strip())}\n{where}"


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
        self.lines = LinesDesk(self)
        self.progress_every_s = PROGRESS_EVERY_S
        self.watches = WatchDesk(self, client)
        log_access(config, workspace)

    # ------------------------------------------------------------------ /mailtrace

    async def on_command(
        self,
        ack: AsyncAck,
        command: dict[str, Any],
        client: AsyncWebClient,
        respond: AsyncRespond,
    ) -> None:
        """Acknowledge at once (with the answer itself when it needs no search), then answer."""
        started = self.monotonic()
        user = str(command.get("user_id") or "")
        channel = str(command.get("channel_id") or "")
        text = unescape(str(command.get("text") or "")).strip()  # a typed <message-id>

        def refuse(outcome: Outcome, reason: str) -> None:
            self._record(user, channel, text, outcome, started, allowed=False, reason=reason)

        lang = self._known_language(user)  # no Slack call before the 3-second ack
        _ = lang.gettext
        if not self.running.accepting:
            await ack(_(SHUTTING_DOWN), response_type=EPHEMERAL)
            refuse(Outcome.SHUTTING_DOWN, "shutting down")
            return
        decision = await self._check_access(user, channel)
        lang = self._known_language(user)  # the access check looked the asker up
        _ = lang.gettext
        if not decision.allowed:
            await ack(decision.worded(lang, user), response_type=EPHEMERAL)
            refuse(Outcome.REFUSED, decision.reason)
            return
        if text.lower() in HELP_WORDS:
            await ack(self._help(lang), response_type=EPHEMERAL)
            self._record(user, channel, text, Outcome.HELP, started)
            return
        try:
            query = parse_query(text, now=self.clock(), zone=self.settings.zone, tr=lang)
            choose_servers(query, self.sources_factory())  # unknown servers: a usage error
        except UsageError as exc:
            await ack(usage_message(str(exc), lang), response_type=EPHEMERAL)
            reason = str(exc).partition("\n")[0]
            self._record(user, channel, text, Outcome.USAGE_ERROR, started, reason=reason)
            return
        wait = self.limiter.acquire(user)
        if wait is not None:
            await ack(
                _(
                    "You've reached my limit of {n} searches a minute. Please ask again in "
                    "{seconds} s."
                ).format(n=self.limiter.per_minute, seconds=max(1, round(wait))),
                response_type=EPHEMERAL,
            )
            refuse(Outcome.RATE_LIMITED, f"more than {self.limiter.per_minute} per minute")
            return
        await ack(
            "🔎 "
            + _("Searching for “{query}”… the answer will appear here.").format(query=escape(text)),
            response_type=EPHEMERAL,
        )
        await self.running.run(self._answer(user, channel, text, client, respond, started))

    async def _answer(
        self,
        user: str,
        channel: str,
        text: str,
        client: AsyncWebClient,
        respond: AsyncRespond,
        started: float,
    ) -> None:
        lang = self._known_language(user)
        delivery = Delivery(client, respond, channel, lang)
        outcome, reason = Outcome.FAILED, ""
        result: SearchResult | None = None
        try:
            zone = await self.directory.zone_of(user)
            lang = delivery.lang = await self._language(user)
            query = parse_query(text, now=self.clock(), zone=zone, tr=lang)
            sources = list(self.sources_factory())
            names = [s.name for s in choose_servers(query, sources)]
            note = (
                lang.gettext("Waiting for a free search slot…")
                if self.running.busy
                else lang.gettext("Searching…")
            )
            await delivery.start(render_progress(query.describe(lang), names, note, lang))
            async with self.running.slot():
                result = await self._search(query, sources, names, delivery, lang)
                result = await self._live_queue(result, sources)
            view = build_view(result, zone, contact=self.contact, lang=lang)
            key = self.lines.keep(view, delivery)
            await delivery.finish(render_thread(view, key, lang))
            outcome, reason = search_outcome(result)
            if not delivery.delivered:  # Slack refused every way: not an answer given
                outcome, reason = Outcome.FAILED, "the answer could not be posted to Slack"
                logger.error("answer_lost user=%s channel=%s", user, channel)
            else:
                thread = delivery.parent_ts if delivery.mode == "thread" else None
                await self.watches.offer(result, delivery.channel, thread, user, lang)
        except asyncio.CancelledError:
            outcome, reason = Outcome.CANCELLED, "shutdown"
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()  # long enough to say so in the thread
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    delivery.notice("⏹️ " + delivery.lang.gettext(CANCELLED)), CANCEL_NOTICE_S
                )
            raise
        except UsageError as exc:
            outcome, reason = Outcome.USAGE_ERROR, str(exc).partition("\n")[0]
            await delivery.notice(str(exc))
        except Exception as exc:  # every failure becomes a message, never silence
            ref = secrets.token_hex(4)
            reason = f"{type(exc).__name__}: {exc}"[:300]
            logger.exception("search_failed ref=%s user=%s channel=%s", ref, user, channel)
            await delivery.notice(
                "⚠️ "
                + delivery.lang.gettext(
                    "Something went wrong while searching, so I have no answer this time. "
                    "The bot's log has the details (reference {ref}). Please try again; if it "
                    "keeps happening, tell the ops team."
                ).format(ref=ref)
            )
        finally:
            self._record(
                user,
                channel,
                text,
                outcome,
                started,
                reason=reason,
                result=result,
                delivery=delivery.mode,
            )

    async def _language(self, user: str) -> Language:
        """The configured language, else the asker's Slack locale."""
        fixed = (self.settings.slack or SlackConfig()).language
        return language(fixed) if fixed else await self.directory.language_of(user)

    def _known_language(self, user: str) -> Language:
        """As `_language`, without a Slack call (before the 3-second ack)."""
        fixed = (self.settings.slack or SlackConfig()).language
        return language(fixed) if fixed else self.directory.cached_language(user)

    async def _search(
        self,
        query: Query,
        sources: list[LogSource],
        names: list[str],
        delivery: Delivery,
        lang: Language,
    ) -> SearchResult:
        """Run the search; every few seconds, tell the thread it is still going."""
        began = self.monotonic()
        states: dict[str, str] = {}
        task = asyncio.create_task(
            run_search(
                query,
                self.settings,
                sources,
                now=self.clock(),
                progress=states.__setitem__,
                tr=lang,
            )
        )
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self.progress_every_s)
                if done:
                    return task.result()
                elapsed = self.monotonic() - began
                where = ", ".join(f"{n}: {_progress_words(states.get(n), lang)}" for n in names)
                await delivery.progress(
                    render_progress(
                        query.describe(lang),
                        names,
                        lang.gettext("Still searching… {seconds:.0f} s so far ({where}).").format(
                            seconds=elapsed, where=where
                        ),
                        lang,
                    )
                )
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=SEARCH_STOP_WAIT_S)

    async def _live_queue(self, result: SearchResult, sources: list[LogSource]) -> SearchResult:
        """The live queue of mail that is not final (servers with `queue: false` are skipped)."""
        return await check_live_queues(result, self.settings, sources, clock=self.clock)

    # ------------------------------------------------------------------ shared

    async def on_error(self, error: Exception, body: dict[str, Any]) -> None:
        """Bolt calls this for exceptions that escape a listener (ours catch their own)."""
        logger.error(
            "listener_failed type=%s error=%r", body.get("type") or body.get("command"), error
        )

    async def _check_access(self, user: str, channel: str) -> Decision:
        try:
            return await asyncio.wait_for(self.access.check(user, channel), ACCESS_BUDGET_S)
        except TimeoutError:
            return Decision(
                allowed=False,
                reason="access check timed out",
                message=N_("Slack was too slow to tell me whether you may ask. Please try again."),
            )

    def _help(self, lang: Language = ENGLISH) -> str:
        _ = lang.gettext
        servers = ", ".join(s.name for s in self.settings.servers) or _("none configured")
        return "\n".join(
            [
                _("*/mailtrace* tells you what happened to an email, from our Postfix logs."),
                f"```{escape(usage(lang))}```",
                _("Servers: {servers}. Dates and times are in your Slack time zone.").format(
                    servers=escape(servers)
                ),
                _(
                    "The answer comes as a thread in this channel: a summary, then one reply per "
                    "message with what happened and why; *Show log lines* attaches the raw "
                    "lines. If I'm not in the channel, only you see the answer — invite me for "
                    "threads."
                ),
            ]
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
        servers: tuple[str, ...] = ()
        counts: dict[str, int] = {}
        if result is not None:
            servers = tuple(c.server for c in result.searched)
            counts = {
                "mails": len(result.journeys),
                "messages": len(result.messages),
                "failures": len(result.failures),
            }
            for journey in result.journeys:  # per verdict: delivered, bounced, ...
                counts[journey.verdict.value] = counts.get(journey.verdict.value, 0) + 1
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


def _progress_words(state: str | None, lang: Language) -> str:
    """A server's progress as run_search reports it ('answered', 'failed: REASON'), in `lang`."""
    _ = lang.gettext
    if state is None:
        return _("searching")
    if state.startswith("failed: "):
        return _("failed: {reason}").format(
            reason=failure_words(state.removeprefix("failed: "), lang)
        )
    return _("answered") if state == "answered" else state
