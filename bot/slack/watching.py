"""The follow-ups in Slack: "Tell me when it's done", "Cancel" and "Retry now" in the thread.

Strategy: after an answer with mail that is not final, one more reply in its thread offers the
watch (and, for an operator asker, "Retry now"); the buttons carry what to watch (server, queue
ID, recipient, give-up time) compactly, so a press needs no memory of the answer and works after
a restart. A watch is a row in the SQLite store; the watcher loop (`bot.watch.schedule`) runs in
the bot's event loop, started with the app and stopped when the bot stops accepting requests,
and posts its replies here, mentioning the asker. "Retry now" is for `slack.operators` (users or
user groups) only; anybody else's press is refused and audited like every other press.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.models.blocks import ActionsBlock, ButtonElement, MarkdownTextObject, SectionBlock
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import MailtraceError
from bot.i18n import Language, language
from bot.live_queue import WAITING
from bot.render import watch as words
from bot.render.slack import escape, fallback, render_notice, sections
from bot.result import SearchResult
from bot.settings import Settings, SlackConfig
from bot.slack.access import Decision
from bot.slack.audit import AuditEntry, AuditLog, Outcome
from bot.slack.delivery import SLACK_CALL_FAILED, respond_ephemeral
from bot.slack.directory import Directory, GroupLookupFailed
from bot.slack.running import RunningSearches
from bot.sources.source import LogSource
from bot.watch.retry import retry_now
from bot.watch.schedule import Said, Watcher
from bot.watch.store import Target, Watch, WatchLimit, WatchState, WatchStore, default_database
from parsers.queue import QUEUE_ID

logger = logging.getLogger("mailtrace.slack.watch")
WATCH_ACTION = "watch_start"
CANCEL_ACTION = "watch_cancel"
RETRY_ACTION = "watch_retry"
MAX_VALUE = 2000  # Slack: characters in a button's value


class Bot(Protocol):
    settings: Settings
    clock: Callable[[], datetime]
    audit: AuditLog
    directory: Directory
    running: RunningSearches
    sources_factory: Callable[[], Sequence[LogSource]]

    async def _check_access(self, user: str, channel: str) -> Decision: ...

    async def _language(self, user: str) -> Language: ...


def waiting_targets(result: SearchResult, limit: int) -> list[tuple[Target, datetime | None]]:
    """The recipients worth watching (their server's queue holds them now), with the time
    Postfix gives them up (when known)."""
    live = {(s.host, s.queue_id): s for s in result.live}
    out: list[tuple[Target, datetime | None]] = []
    for journey in result.journeys:
        for o in journey.recipients:
            if o.status not in WAITING or o.temporary or not o.queue_id:
                continue
            if not QUEUE_ID.match(o.queue_id):
                continue
            state = live.get((o.host, o.queue_id))
            if state is None or state.queue_name is None:
                continue  # not read (queue: false, unreachable), or gone since: nothing to watch
            target = Target(server=o.host, queue_id=o.queue_id, address=o.address)
            out.append((target, o.gives_up_at or state.gives_up_at))
    return out[:limit]


def encode(targets: Sequence[tuple[Target, datetime | None]]) -> str:
    """A button value: [[server, queue ID, address, give-up epoch or 0], ...] within 2000."""
    rows: list[list[Any]] = []
    for t, ends in targets:
        row = [t.server, t.queue_id, t.address, int(ends.timestamp()) if ends else 0]
        if len(json.dumps([*rows, row], separators=(",", ":"))) > MAX_VALUE:
            break
        rows.append(row)
    return json.dumps(rows, separators=(",", ":"))


def decode(value: str) -> list[tuple[Target, datetime | None]]:
    """The button value back; ValueError for anything else."""
    rows = json.loads(value)
    out: list[tuple[Target, datetime | None]] = []
    for server, queue_id, address, ends in rows:
        if not QUEUE_ID.match(str(queue_id)):
            raise ValueError("not a queue ID")
        target = Target(server=str(server), queue_id=str(queue_id), address=str(address))
        out.append((target, datetime.fromtimestamp(int(ends), UTC) if ends else None))
    if not out:
        raise ValueError("nothing to watch")
    return out


def _button(text: str, action: str, value: str, style: str | None = None) -> ButtonElement:
    return ButtonElement(text=text, action_id=action, value=value, style=style)


class WatchDesk:
    """The three buttons' listeners, the offer under an answer, and the watcher loop."""

    def __init__(self, bot: Bot, client: AsyncWebClient) -> None:
        # Watches run on the wall clock (the bot's `clock` is "now" for query dates only).
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.bot = bot
        self.client = client
        self.settings = bot.settings
        self.config = bot.settings.slack or SlackConfig()
        audit_path = bot.audit.path
        self.store = WatchStore(
            default_database(bot.settings, beside=audit_path.parent if audit_path else None)
        )
        self.watcher = Watcher(
            self.store,
            bot.settings,
            bot.sources_factory,
            self._notify,
            self._audit_watch,
            clock=self.now,
        )
        self.task: asyncio.Task[None] | None = None

    def register(self, app: AsyncApp) -> None:
        app.action(WATCH_ACTION)(self.on_watch)
        app.action(CANCEL_ACTION)(self.on_cancel)
        app.action(RETRY_ACTION)(self.on_retry)

    def start(self) -> None:
        """Run the watcher in this event loop while there are active watches and the bot
        accepts requests (it stops within a tick of shutdown; the rows stay for the next run)."""
        if self.task is not None and not self.task.done():
            return
        if not self.store.active():
            return
        running = self.bot.running

        def keep_going() -> bool:
            return running.accepting and bool(self.store.active())

        self.task = asyncio.get_running_loop().create_task(
            running.run(self.watcher.run(keep_going))
        )

    # ------------------------------------------------------------------ the offer

    async def offer(
        self, result: SearchResult, channel: str, thread_ts: str | None, user: str, lang: Language
    ) -> None:
        """Under an answer with mail that is not final: the watch button (and Retry now)."""
        targets = waiting_targets(result, self.settings.watch.max_recipients)
        if not targets or thread_ts is None:
            return
        value = encode(targets)
        buttons = [_button(lang.gettext("Tell me when it's done"), WATCH_ACTION, value, "primary")]
        if await self.is_operator(user):
            buttons.append(_button(lang.gettext("Retry now"), RETRY_ACTION, value))
        text = lang.ngettext(
            "⏳ {n} recipient is not final yet. I can tell you here when it is.",
            "⏳ {n} recipients are not final yet. I can tell you here when they are.",
            len(targets),
        ).format(n=len(targets))
        blocks = (*sections([text]), ActionsBlock(elements=buttons))
        try:
            await self.client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, text=fallback([text]), blocks=list(blocks)
            )
        except SLACK_CALL_FAILED as exc:
            logger.warning("watch_offer_failed channel=%s error=%r", channel, exc)

    async def is_operator(self, user: str) -> bool:
        if user in self.config.operators:
            return True
        for group in self.config.operator_usergroups:
            try:
                if user in await self.bot.directory.members_of(group):
                    return True
            except GroupLookupFailed:  # fails closed
                continue
        return False

    # ------------------------------------------------------------------ buttons

    async def on_watch(self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        user, channel, thread_ts, value = _press(body)
        lang = await self.bot._language(user)
        decision = await self.bot._check_access(user, channel)
        if not decision.allowed:
            await respond_ephemeral(respond, render_notice(decision.message), channel)
            self._record(user, channel, Outcome.REFUSED, "watch", value, decision.reason, False)
            return
        try:
            targets = decode(value)
        except (ValueError, TypeError) as exc:
            self._record(user, channel, Outcome.FAILED, "watch", value[:200], f"bad value: {exc}")
            return
        now = self.now()
        ends = [e for _, e in targets if e is not None]
        fallback_end = max(now + self._lifetime(t.server) for t, _ in targets)
        expires = (max(ends) if ends else fallback_end) + timedelta(days=1)
        zone = await self.bot.directory.zone_of(user)
        watch = Watch(
            team=str((body.get("team") or {}).get("id") or ""),
            user=user,
            channel=channel,
            thread_ts=thread_ts,
            lang=lang.code,
            zone=str(zone),
            targets=tuple(t for t, _ in targets),
            created_at=now,
            expires_at=expires,
            next_poll_at=now + timedelta(seconds=self.settings.watch.min_interval),
            interval_s=self.settings.watch.min_interval,
        )
        try:
            watch = self.store.add(
                watch,
                per_user=self.settings.watch.max_per_user,
                per_workspace=self.settings.watch.max_per_workspace,
            )
        except WatchLimit as exc:
            line = words.limit_line(exc.which, exc.limit, lang)
            await respond_ephemeral(respond, render_notice(line), channel)
            self._record(user, channel, Outcome.WATCH_LIMITED, "watch", value, str(exc))
            return
        lines = words.started_lines(watch.targets, expires, zone, lang)
        cancel = _button(lang.gettext("Cancel"), CANCEL_ACTION, str(watch.id), "danger")
        await self._post(watch, lines, extra=ActionsBlock(elements=[cancel]), mention=False)
        self._record(user, channel, Outcome.WATCH_STARTED, "watch", value, f"watch {watch.id}")
        self.start()
        self.watcher.wake()

    async def on_cancel(self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        user, channel, _thread, value = _press(body)
        lang = await self.bot._language(user)
        watch = self.store.get(int(value)) if value.isdigit() else None
        if watch is None or watch.state is not WatchState.ACTIVE:
            await respond_ephemeral(respond, render_notice(words.gone_line(lang)), channel)
            self._record(user, channel, Outcome.FAILED, "watch_cancel", value, "no active watch")
            return
        if user != watch.user and not await self.is_operator(user):
            await respond_ephemeral(respond, render_notice(words.not_operator_line(lang)), channel)
            self._record(
                user, channel, Outcome.REFUSED, "watch_cancel", value, "not the asker", False
            )
            return
        self.store.save(watch.model_copy(update={"state": WatchState.CANCELLED}))
        await self._post(watch, [words.cancelled_line("\0", lang)], mention=False, who=user)
        self._record(
            user, channel, Outcome.WATCH_CANCELLED, "watch_cancel", value, f"watch {watch.id}"
        )

    async def on_retry(self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        user, channel, thread_ts, value = _press(body)
        lang = await self.bot._language(user)
        if not await self.is_operator(user):
            await respond_ephemeral(respond, render_notice(words.not_operator_line(lang)), channel)
            self._record(user, channel, Outcome.REFUSED, "retry", value, "not an operator", False)
            return
        try:
            targets = [t for t, _ in decode(value)]
        except (ValueError, TypeError) as exc:
            self._record(user, channel, Outcome.FAILED, "retry", value[:200], f"bad value: {exc}")
            return
        sources = {s.name: s for s in self.bot.sources_factory()}
        lines: list[str] = []
        failed: list[str] = []
        for server in dict.fromkeys(t.server for t in targets):
            ids = list(dict.fromkeys(t.queue_id for t in targets if t.server == server))
            try:
                config = self.settings.server(server)
                limits = self.settings.limits_for(config)
                await retry_now(config, sources[server].runner, ids, limits.command_timeout)
                lines.append(words.retry_line(server, ids, lang))
            except (MailtraceError, KeyError) as exc:
                why = getattr(exc, "detail", str(exc))
                lines.append(words.retry_failed_line(server, why, lang))
                failed.append(f"{server}: {why}")
        for watch in self.store.active():
            if watch.channel == channel and watch.thread_ts == thread_ts:
                self.watcher.soon(watch)
        await self.client.chat_postMessage(
            channel=channel, thread_ts=thread_ts, text=fallback(lines), blocks=sections(lines)
        )
        outcome = Outcome.FAILED if failed else Outcome.RETRY_REQUESTED
        self._record(user, channel, outcome, "retry", value, "; ".join(failed))

    # ------------------------------------------------------------------ the loop's voice

    async def _notify(self, watch: Watch, said: Said, why: str) -> bool:
        lang = language(watch.lang)
        if said is Said.DONE:
            lines = words.done_lines(watch.targets, lang)
        elif said is Said.EXPIRED:
            lines = words.expired_lines(watch.targets, lang)
        else:
            lines = [words.unreachable_line(why, lang)]
        return await self._post(watch, lines, mention=True)

    async def _post(
        self, watch: Watch, lines: list[str], *, extra: Any = None, mention: bool, who: str = ""
    ) -> bool:
        """Post in the watch's thread (mentioning its asker, or `who` where a line has \\0)."""
        escaped = [escape(line).replace("\0", f"<@{who}>") for line in lines]
        if mention:
            escaped[0] = f"<@{watch.user}> {escaped[0]}"
        blocks = _blocks(escaped)
        if extra is not None:
            blocks.append(extra)
        try:
            await self.client.chat_postMessage(
                channel=watch.channel,
                thread_ts=watch.thread_ts,
                text="\n".join(escaped)[:3000],
                blocks=blocks,
            )
        except SLACK_CALL_FAILED as exc:
            logger.warning("watch_post_failed watch=%s error=%r", watch.id, exc)
            return False
        return True

    def _lifetime(self, server: str) -> timedelta:
        try:
            return self.settings.server(server).queue_lifetime_delta
        except MailtraceError:
            return timedelta(days=5)

    def _audit_watch(self, watch: Watch, event: str, detail: str) -> None:
        outcome = {
            "watch_done": Outcome.WATCH_DONE,
            "watch_expired": Outcome.WATCH_EXPIRED,
            "watch_unreachable": Outcome.WATCH_UNREACHABLE,
        }[event]
        self._record(watch.user, watch.channel, outcome, "watch", f"watch {watch.id}", detail)

    def _record(
        self,
        user: str,
        channel: str,
        outcome: Outcome,
        action: str,
        query: str,
        reason: str = "",
        allowed: bool = True,
    ) -> None:
        self.bot.audit.record(
            AuditEntry(
                user=user,
                channel=channel,
                action=action,
                query=query[:500],
                outcome=outcome,
                allowed=allowed,
                reason=reason[:300],
            )
        )
        logger.info("watch action=%s user=%s outcome=%s", action, user, outcome.value)


def _blocks(escaped: list[str]) -> list[Any]:
    """One section of already escaped mrkdwn (mentions must stay live: not verbatim)."""
    text = "\n".join(escaped)
    return [SectionBlock(text=MarkdownTextObject(text=text[:3000], verbatim=False))]


def _press(body: dict[str, Any]) -> tuple[str, str, str, str]:
    """Who pressed, in which conversation and thread, and the button's value."""
    user = str((body.get("user") or {}).get("id") or "")
    container = body.get("container") or {}
    message = body.get("message") or {}
    channel = str((body.get("channel") or {}).get("id") or container.get("channel_id") or "")
    thread_ts = str(
        container.get("thread_ts") or message.get("thread_ts") or container.get("message_ts") or ""
    )
    actions = body.get("actions") or [{}]
    return user, channel, thread_ts, str(actions[0].get("value") or "")
