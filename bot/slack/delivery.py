"""Posting one answer: a parent message with progress, then the replies in its thread.

Strategy: the parent is posted first, as a "searching" note, so that long searches can show
progress (chat.update) and so that we learn at once whether we may post here at all. When Slack
says we may not (not in the channel, a DM or private conversation the bot is not part of), the
answer goes through the command's response_url instead — visible to the asker only, with a hint
to invite the bot. Nothing here raises: a failed post is logged and, where possible, reported to
the asker, because silence is the one answer we never give. Progress updates are a courtesy: a
failed one is logged and the search goes on.

A Slack call fails in more ways than `SlackApiError`: after its retries the client lets the
network's own errors through (aiohttp's, timeouts, OSError). `SLACK_CALL_FAILED` names them
all, for every place in bot/slack/ that calls Slack.
"""

from __future__ import annotations

import logging
from typing import Literal

import aiohttp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.i18n import ENGLISH, Language
from bot.render.slack import (
    INVITE_HINT,
    SlackMessage,
    SlackThread,
    render_for_respond,
    render_notice,
)

logger = logging.getLogger("mailtrace.slack")

# chat.postMessage errors that mean "this conversation is closed to the bot".
CANNOT_POST = frozenset(
    {
        "not_in_channel",
        "channel_not_found",
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
    }
)


# What a Slack Web API call, a response_url post or a file upload raises when it fails
# (TimeoutError is also asyncio.TimeoutError; aiohttp's connection errors are OSErrors too).
SLACK_CALL_FAILED: tuple[type[Exception], ...] = (
    SlackApiError,
    SlackClientError,
    aiohttp.ClientError,
    TimeoutError,
    OSError,
)


def slack_error(exc: Exception) -> str:
    """Slack's error code (`not_in_channel`), or a short description of a transport failure."""
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or exc.response.status_code)
    return type(exc).__name__


async def respond_ephemeral(respond: AsyncRespond, message: SlackMessage, channel: str) -> bool:
    """Post `message` through the command's response_url, for the asker's eyes only.

    Returns False (and logs why) when it could not be posted; never raises.
    """
    try:
        response = await respond(
            response_type="ephemeral", replace_original=False, **message.as_kwargs()
        )
    except SLACK_CALL_FAILED as exc:
        logger.error("respond_failed channel=%s error=%r", channel, exc)
        return False
    if response.status_code != 200:
        logger.error(
            "respond_failed channel=%s status=%s body=%s",
            channel,
            response.status_code,
            str(response.body)[:200],
        )
        return False
    return True


class Delivery:
    """One answer's way to the asker: a thread in `channel`, or the response_url."""

    def __init__(
        self,
        client: AsyncWebClient,
        respond: AsyncRespond,
        channel: str,
        lang: Language = ENGLISH,
    ) -> None:
        self.client = client
        self.lang = lang  # the asker's: our own notices and hints are worded in it
        self.respond = respond
        self.channel = channel
        self.mode: Literal["thread", "respond"] = "thread"
        self.parent_ts: str | None = None
        self.hint: str | None = None  # why we answer through response_url, for the asker
        self.failures: list[str] = []
        self.delivered = False  # some part of the answer reached the asker (set by finish)

    async def start(self, progress: SlackMessage) -> None:
        """Post the parent (a progress note); switch to response_url if we may not post."""
        try:
            response = await self.client.chat_postMessage(
                channel=self.channel, **progress.as_kwargs()
            )
        except SLACK_CALL_FAILED as exc:
            error = slack_error(exc)
            self.mode = "respond"
            if error in CANNOT_POST:
                self.hint = INVITE_HINT
                logger.info("answer_via_response_url channel=%s error=%s", self.channel, error)
            else:
                logger.error("parent_post_failed channel=%s error=%s", self.channel, error)
            return
        self.parent_ts = str(response["ts"])
        self.channel = str(response.get("channel") or self.channel)

    async def progress(self, message: SlackMessage) -> None:
        """Update the parent while the search runs (best effort: progress is a courtesy)."""
        if self.mode != "thread" or self.parent_ts is None:
            return
        try:
            await self.client.chat_update(
                channel=self.channel, ts=self.parent_ts, **message.as_kwargs()
            )
        except SLACK_CALL_FAILED as exc:
            logger.warning(
                "progress_update_failed channel=%s error=%s", self.channel, slack_error(exc)
            )

    async def finish(self, thread: SlackThread) -> None:
        """Replace the progress note with the summary and post the replies under it."""
        if self.mode == "respond" or self.parent_ts is None:
            for message in render_for_respond(thread, self.hint, self.lang):
                self.delivered |= await self._respond(message)
            return
        try:
            await self.client.chat_update(
                channel=self.channel, ts=self.parent_ts, **thread.parent.as_kwargs()
            )
            self.delivered = True
        except SLACK_CALL_FAILED as exc:
            self.failures.append(f"summary: {slack_error(exc)}")
            # the summary in the thread rather than nowhere
            self.delivered |= await self._reply(thread.parent)
        for reply in thread.replies:
            self.delivered |= await self._reply(reply)
        if self.failures:
            await self._respond(
                render_notice(
                    "⚠️ "
                    + self.lang.gettext(
                        "Part of this answer could not be posted ({errors}). Please ask again "
                        "in a minute; if it keeps happening, tell the ops team."
                    ).format(errors="; ".join(self.failures[:3]))
                )
            )

    async def notice(self, text: str) -> None:
        """A message of ours (an error, a cancellation) in the thread, else to the asker.

        Never raises: it is what the error branches call.
        """
        message = render_notice(text)
        if self.mode == "thread" and self.parent_ts is not None and await self._reply(message):
            return
        await self._respond(message)

    async def _reply(self, message: SlackMessage) -> bool:
        try:
            await self.client.chat_postMessage(
                channel=self.channel, thread_ts=self.parent_ts, **message.as_kwargs()
            )
        except SLACK_CALL_FAILED as exc:
            error = slack_error(exc)
            logger.error("reply_post_failed channel=%s error=%s", self.channel, error)
            self.failures.append(error)
            return False
        return True

    async def _respond(self, message: SlackMessage) -> bool:
        return await respond_ephemeral(self.respond, message, self.channel)
