"""`/mailtrace QUERY`: acknowledged at once, then answered in a thread.

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
import secrets
import time
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import UsageError, failure_words
from bot.i18n import ENGLISH, Language
from bot.live_queue import check_live_queues
from bot.query import Query, parse_query
from bot.render.slack import escape, render_progress, render_thread, unescape
from bot.render.view import build_view
from bot.result import SearchResult
from bot.search import choose_servers, run_search
from bot.slack.audit import Outcome, search_outcome
from bot.slack.delivery import Delivery
from bot.sources.source import LogSource
from bot.usage import usage
from parsers.i18n import N_

if TYPE_CHECKING:
    from bot.slack.app import MailtraceBot

logger = logging.getLogger("mailtrace.slack")

COMMAND = "/mailtrace"
HELP_WORDS = frozenset({"", "help", "-h", "--help", "?", "usage"})
EPHEMERAL = "ephemeral"  # acknowledgements are seen by the asker only
SHUTTING_DOWN = N_("mailtrace is restarting right now. Please ask again in a minute.")
CANCELLED = N_("mailtrace had to restart, so this search was stopped. Please ask again.")
# A cancelled search (shutdown) waits this long for the search to stop, then this long for its
# thread to say so: together within serve.CANCEL_WAIT_S.
SEARCH_STOP_WAIT_S = 0.5
CANCEL_NOTICE_S = 1.5


def usage_message(error: str, lang: Language = ENGLISH) -> str:
    """A usage error as mrkdwn: its one line (with at most one example), and where help is."""
    where = lang.gettext("Type `/mailtrace help` for the whole grammar.")
    return f"{escape(error.strip())}\n{where}"


class CommandDesk:
    """The /mailtrace listener: the acknowledgement, the search and the thread it answers in."""

    def __init__(self, bot: MailtraceBot) -> None:
        self.bot = bot

    def register(self, app: AsyncApp) -> None:
        app.command(COMMAND)(self.on_command)

    async def on_command(
        self,
        ack: AsyncAck,
        command: dict[str, Any],
        client: AsyncWebClient,
        respond: AsyncRespond,
    ) -> None:
        """Acknowledge at once (with the answer itself when it needs no search), then answer."""
        bot = self.bot
        started = bot.monotonic()
        user = str(command.get("user_id") or "")
        channel = str(command.get("channel_id") or "")
        text = unescape(str(command.get("text") or "")).strip()  # a typed <message-id>

        def refuse(outcome: Outcome, reason: str) -> None:
            bot._record(user, channel, text, outcome, started, allowed=False, reason=reason)

        lang = bot._known_language(user)  # no Slack call before the 3-second ack
        _ = lang.gettext
        if not bot.running.accepting:
            await ack(_(SHUTTING_DOWN), response_type=EPHEMERAL)
            refuse(Outcome.SHUTTING_DOWN, "shutting down")
            return
        decision = await bot._check_access(user, channel)
        lang = bot._known_language(user)  # the access check looked the asker up
        _ = lang.gettext
        if not decision.allowed:
            await ack(decision.worded(lang, user), response_type=EPHEMERAL)
            refuse(Outcome.REFUSED, decision.reason)
            return
        if text.lower() in HELP_WORDS:
            await ack(self._help(lang), response_type=EPHEMERAL)
            bot._record(user, channel, text, Outcome.HELP, started)
            return
        try:
            query = parse_query(text, now=bot.clock(), zone=bot.settings.zone, tr=lang)
            choose_servers(query, bot.sources_factory())  # unknown servers: a usage error
        except UsageError as exc:
            await ack(usage_message(str(exc), lang), response_type=EPHEMERAL)
            reason = str(exc).partition("\n")[0]
            bot._record(user, channel, text, Outcome.USAGE_ERROR, started, reason=reason)
            return
        wait = bot.limiter.acquire(user)
        if wait is not None:
            await ack(
                _(
                    "You've reached my limit of {n} searches a minute. Please ask again in "
                    "{seconds} s."
                ).format(n=bot.limiter.per_minute, seconds=max(1, round(wait))),
                response_type=EPHEMERAL,
            )
            refuse(Outcome.RATE_LIMITED, f"more than {bot.limiter.per_minute} per minute")
            return
        await ack(
            "🔎 "
            + _("Searching for “{query}”… the answer will appear here.").format(query=escape(text)),
            response_type=EPHEMERAL,
        )
        await bot.running.run(self._answer(user, channel, text, client, respond, started))

    async def _answer(
        self,
        user: str,
        channel: str,
        text: str,
        client: AsyncWebClient,
        respond: AsyncRespond,
        started: float,
    ) -> None:
        bot = self.bot
        lang = bot._known_language(user)
        delivery = Delivery(client, respond, channel, lang)
        outcome, reason = Outcome.FAILED, ""
        result: SearchResult | None = None
        try:
            zone = await bot.directory.zone_of(user)
            lang = delivery.lang = await bot._language(user)
            query = parse_query(text, now=bot.clock(), zone=zone, tr=lang)
            sources = list(bot.sources_factory())
            names = [s.name for s in choose_servers(query, sources)]
            note = (
                lang.gettext("Waiting for a free search slot…")
                if bot.running.busy
                else lang.gettext("Searching…")
            )
            await delivery.start(render_progress(query.describe(lang), names, note, lang))
            async with bot.running.slot():
                result = await self._search(query, sources, names, delivery, lang)
                result = await self._live_queue(result, sources)
            began = time.perf_counter()
            view = build_view(result, zone, contact=bot.contact, lang=lang)
            key = bot.lines.keep(view, delivery)
            thread_blocks = render_thread(view, key, lang)
            rendered = time.perf_counter()
            await delivery.finish(thread_blocks)
            logger.debug(
                "answer_timing search_s=%.3f render_s=%.3f post_s=%.3f",
                result.duration_s,
                rendered - began,
                time.perf_counter() - rendered,
            )
            outcome, reason = search_outcome(result)
            if not delivery.delivered:  # Slack refused every way: not an answer given
                outcome, reason = Outcome.FAILED, "the answer could not be posted to Slack"
                logger.error("answer_lost user=%s channel=%s", user, channel)
            else:
                thread = delivery.parent_ts if delivery.mode == "thread" else None
                await bot.watches.offer(result, delivery.channel, thread, user, lang)
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
            bot._record(
                user,
                channel,
                text,
                outcome,
                started,
                reason=reason,
                result=result,
                delivery=delivery.mode,
            )

    async def _search(
        self,
        query: Query,
        sources: list[LogSource],
        names: list[str],
        delivery: Delivery,
        lang: Language,
    ) -> SearchResult:
        """Run the search; every few seconds, tell the thread it is still going."""
        bot = self.bot
        began = bot.monotonic()
        states: dict[str, str] = {}
        task = asyncio.create_task(
            run_search(
                query,
                bot.settings,
                sources,
                now=bot.clock(),
                progress=states.__setitem__,
                tr=lang,
            )
        )
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=bot.progress_every_s)
                if done:
                    return task.result()
                elapsed = bot.monotonic() - began
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
        return await check_live_queues(result, self.bot.settings, sources, clock=self.bot.clock)

    def _help(self, lang: Language = ENGLISH) -> str:
        _ = lang.gettext
        servers = ", ".join(s.name for s in self.bot.settings.servers) or _("none configured")
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
