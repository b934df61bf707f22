"""The Slack Web API client: where it points, how it retries, and which methods it may call.

Strategy: one client serves the whole bot. Its base URL is the setting, else $SLACK_API_URL
(tests point it at the local fake Slack), else Slack's own; it retries connection errors, 429
(after Retry-After) and 5xx itself. `SCOPES` lists every method the bot calls with the bot scope
it needs: the manifest must grant them, and a test checks that no other method is called.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.settings import Settings
from bot.slack.secrets import API_URL

DEFAULT_API_URL = "https://slack.com/api/"

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
