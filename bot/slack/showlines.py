"""The "Show log lines" button: an answer's raw lines kept in memory, then sent when asked.

Strategy: the answer keeps each mail's raw lines in the bot's bounded cache (`rawlines`) and
gives its buttons the key; a click is checked against the same access rules as a command,
audited whatever happens, and answered with the lines uploaded to the answer's thread as a
file, or (no thread, or the upload refused) posted to the clicker alone as code blocks.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.i18n import ENGLISH, Language
from bot.render.slack import SHOW_LINES_ACTION, render_notice, render_raw_lines
from bot.render.view import AnswerView
from bot.slack.access import Decision
from bot.slack.audit import Outcome
from bot.slack.delivery import SLACK_CALL_FAILED, Delivery, respond_ephemeral, slack_error
from bot.slack.rawlines import AnswerLines, RawLinesCache
from parsers.i18n import N_

logger = logging.getLogger("mailtrace.slack")
LINES_FAILED = N_(
    "Something went wrong while fetching those log lines (reference {ref}). Please try "
    "again; if it keeps happening, tell the ops team."
)
LINES_GONE = N_(
    "I no longer have those log lines: I keep them for recent answers only, and forget them "
    "when I restart. Ask again with /mailtrace to get fresh ones."
)


class LinesBot(Protocol):
    raw_lines: RawLinesCache
    monotonic: Callable[[], float]

    async def _check_access(self, user: str, channel: str) -> Decision: ...

    def _known_language(self, user: str) -> Language: ...

    def _record(
        self,
        user: str,
        channel: str,
        query: str = ...,
        outcome: Outcome = ...,
        started: float = ...,
        *,
        allowed: bool = ...,
        reason: str = ...,
        delivery: str = ...,
        action: str = ...,
    ) -> None: ...


class LinesDesk:
    """The button's listener and the keeping of lines for it."""

    def __init__(self, bot: LinesBot) -> None:
        self.bot = bot

    def register(self, app: AsyncApp) -> None:
        app.action(re.compile(rf"^{SHOW_LINES_ACTION}(:\d+)?$"))(self.on_show_lines)

    def keep(self, view: AnswerView, delivery: Delivery) -> str | None:
        """Keep the answer's raw lines for its buttons; the key, or None with no mail."""
        if not view.stories:
            return None
        return self.bot.raw_lines.put(
            AnswerLines(
                channel=delivery.channel,
                thread_ts=delivery.parent_ts if delivery.mode == "thread" else None,
                messages=tuple((story.title, story.raw) for story in view.stories),
            )
        )

    async def on_show_lines(
        self,
        ack: AsyncAck,
        body: dict[str, Any],
        client: AsyncWebClient,
        respond: AsyncRespond,
    ) -> None:
        """Attach one message's raw log lines to the thread as a file (audited, whatever
        happens; a failure is told to whoever clicked)."""
        await ack()
        started = self.bot.monotonic()
        user = str((body.get("user") or {}).get("id") or "")
        channel = str(
            (body.get("channel") or {}).get("id")
            or (body.get("container") or {}).get("channel_id")
            or ""
        )
        actions = body.get("actions") or [{}]
        value = str(actions[0].get("value") or "")
        key, _sep, index = value.rpartition(":")
        answer = self.bot.raw_lines.get(key)
        lang = self.bot._known_language(user)
        where = answer.channel if answer is not None else channel
        outcome, reason, allowed, delivery = Outcome.FAILED, "", True, ""
        try:
            decision = await self.bot._check_access(user, where)
            if not decision.allowed:
                outcome, reason, allowed = Outcome.REFUSED, decision.reason, False
                await respond_ephemeral(respond, render_notice(decision.worded(lang, user)), where)
                return
            if answer is None or not index.isdigit() or int(index) >= len(answer.messages):
                outcome = Outcome.LINES_EXPIRED
                await respond_ephemeral(respond, render_notice(lang.gettext(LINES_GONE)), where)
                return
            title, lines = answer.messages[int(index)]
            delivery, reason = await send_lines(client, respond, answer, title, lines, lang)
            outcome = Outcome.LINES_SHOWN if not reason else Outcome.FAILED
        except Exception as exc:  # a bug: say so to whoever clicked, never silence
            ref = secrets.token_hex(4)
            reason = f"{type(exc).__name__}: {exc}"[:300]
            logger.exception("show_lines_failed ref=%s user=%s channel=%s", ref, user, where)
            failed = "⚠️ " + lang.gettext(LINES_FAILED).format(ref=ref)
            await respond_ephemeral(respond, render_notice(failed), where)
        finally:
            self.bot._record(
                user,
                where,
                outcome=outcome,
                started=started,
                allowed=allowed,
                reason=reason,
                delivery=delivery,
                action="show_lines",
                query=value,
            )


async def send_lines(
    client: AsyncWebClient,
    respond: AsyncRespond,
    answer: AnswerLines,
    title: str,
    lines: Sequence[str],
    lang: Language = ENGLISH,
) -> tuple[str, str]:
    """Upload the lines to the answer's thread, else post them ephemerally as code blocks.

    Returns (delivery, reason): "thread" or "respond", and why nothing arrived ("" if it did).
    """
    why = "the answer has no thread"
    if answer.thread_ts is not None:
        try:
            await client.files_upload_v2(
                channel=answer.channel,
                thread_ts=answer.thread_ts,
                content="\n".join(lines) + "\n",
                filename=f"mailtrace-{re.sub(r'[^A-Za-z0-9._-]+', '-', title)}.log",
                title=lang.gettext("Log lines of {title}").format(title=title),
                alt_txt=lang.ngettext(
                    "{n} Postfix log line of {title}",
                    "{n} Postfix log lines of {title}",
                    len(lines),
                ).format(n=len(lines), title=title),
            )
        except SLACK_CALL_FAILED as exc:
            why = slack_error(exc)
        else:
            return "thread", ""
    logger.info("lines_upload_fallback channel=%s reason=%s", answer.channel, why)
    posted = [
        await respond_ephemeral(respond, message, answer.channel)
        for message in render_raw_lines(title, lines, lang)
    ]
    return "respond", "" if all(posted) else f"upload: {why}; response_url failed"
