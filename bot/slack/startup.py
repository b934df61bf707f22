"""Start-up checks of the Slack credentials: a refused token is fatal, a network failure is not.

Strategy: before anything is served, `auth.test` checks the bot token and, in Socket Mode,
`apps.connections.open` checks the app-level token. Slack's verdict on a credential
(`invalid_auth`, `not_authed`, `account_inactive`, a wrong token type, …) is a `ConfigError`:
the process exits 2 at once, since no retry can fix it. Anything else — DNS, refused
connections, timeouts, HTTP 5xx, Slack's own `internal_error` — is retried with exponential
backoff for as long as it takes (meanwhile /healthz answers 503), each failure logged as one
readable line. The caller cancels the wait when a signal arrives.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import ConfigError
from bot.slack.delivery import SLACK_CALL_FAILED

logger = logging.getLogger("mailtrace.serve")

BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 30.0

# Slack's errors that say the credential itself is wrong (Web API docs, "Errors" of auth.test and
# apps.connections.open): asking again cannot help.
REJECTED = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "not_allowed_token_type",
        "no_permission",
        "missing_scope",
        "team_access_not_granted",
        "org_login_required",
        "ekm_access_denied",
        "two_factor_setup_required",
        "invalid_token",
    }
)


def describe_failure(exc: BaseException) -> str:
    """One readable line for a failed call to Slack (never a repr, never a token)."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"cannot resolve host name {exc.host}"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"the TLS certificate of {exc.host} is not trusted (a proxy with its own CA?)"
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return f"cannot connect to the proxy {exc.host}:{exc.port}: {_os_reason(exc.os_error)}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {exc.host}:{exc.port}: {_os_reason(exc.os_error)}"
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, SlackApiError):
        error = exc.response.get("error") if isinstance(exc.response.data, dict) else None
        status = exc.response.status_code
        return f"Slack answered {error}" if error else f"Slack answered HTTP {status}"
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"HTTP {exc.status} {exc.message}".strip()
    if isinstance(exc, OSError):
        return _os_reason(exc)
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _os_reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


async def check_bot_token(client: AsyncWebClient, url: str) -> dict[str, Any]:
    """auth.test until Slack answers: who the bot is, or a ConfigError if the token is refused."""
    response = await call_until_answered(client.auth_test, "SLACK_BOT_TOKEN", url)
    return dict(response)


async def check_app_token(app_token: str, url: str) -> None:
    """apps.connections.open with the app-level token: a refused token is a ConfigError."""
    client = AsyncWebClient(base_url=url)
    await call_until_answered(
        lambda: client.apps_connections_open(app_token=app_token), "SLACK_APP_TOKEN", url
    )


async def call_until_answered(
    call: Callable[[], Awaitable[Any]],
    credential: str,
    url: str,
    *,
    first_s: float = BACKOFF_FIRST_S,
    max_s: float = BACKOFF_MAX_S,
) -> dict[str, Any]:
    """Call Slack until it answers; its verdict on `credential` ends the wait either way."""
    delay = first_s
    attempt = 1
    while True:
        try:
            response = await call()
        except SlackApiError as exc:
            error = exc.response.get("error") if isinstance(exc.response.data, dict) else None
            if error in REJECTED:
                raise ConfigError(
                    f"Slack refused {credential} ({error}); check the token (docs/slack.md: Tokens)"
                ) from exc
            reason = describe_failure(exc)
        except SLACK_CALL_FAILED as exc:
            reason = describe_failure(exc)
        else:
            data = response.data if hasattr(response, "data") else response
            if attempt > 1:
                logger.info("slack_reachable checked=%s attempts=%s", credential, attempt)
            return dict(data) if isinstance(data, dict) else {}
        logger.warning(
            'slack_unreachable api=%s checked=%s attempt=%s retry_in_s=%.0f error="%s"',
            url,
            credential,
            attempt,
            delay,
            reason.replace('"', "'"),
        )
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_s)
        attempt += 1
