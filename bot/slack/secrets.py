"""Slack credentials: only from the environment (or files named there), never from the YAML.

Strategy: each secret NAME comes from $NAME or from the file $NAME_FILE (Docker and Kubernetes
secrets); setting both is an error rather than a silent choice. Which tokens are needed depends
on the mode: Socket Mode needs the bot token and the app-level token (xapp-); HTTP mode needs the
bot token and the signing secret. The values never appear in a repr or a log line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bot.errors import ConfigError

# Names of environment variables, not secrets.
BOT_TOKEN = "SLACK_BOT_TOKEN"  # noqa: S105
APP_TOKEN = "SLACK_APP_TOKEN"  # noqa: S105
SIGNING_SECRET = "SLACK_SIGNING_SECRET"  # noqa: S105
API_URL = "SLACK_API_URL"


@dataclass(frozen=True)
class SlackSecrets:
    """The tokens `mailtrace serve` runs with; `socket_mode` when an app token is present."""

    bot_token: str = field(repr=False)
    app_token: str | None = field(default=None, repr=False)
    signing_secret: str | None = field(default=None, repr=False)

    @property
    def socket_mode(self) -> bool:
        return self.app_token is not None


def read_secret(name: str, environ: Mapping[str, str]) -> str | None:
    """$NAME, or the contents of the file $NAME_FILE (surrounding whitespace stripped).

    A variable holding only whitespace counts as unset (an empty `-e NAME=` or a stray space
    must not become an empty signing secret).
    """
    value = environ.get(name, "").strip() or None
    path = environ.get(f"{name}_FILE", "").strip() or None
    if value is not None and path is not None:
        raise ConfigError(f"set {name} or {name}_FILE, not both")
    if path is None:
        return value
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{name}_FILE: cannot read {path}: {exc.strerror}") from exc
    if not text:
        raise ConfigError(f"{name}_FILE: {path} is empty")
    return text


def load_secrets(environ: Mapping[str, str]) -> SlackSecrets:
    """The secrets for `mailtrace serve`, or a ConfigError that says exactly what to set."""
    bot_token = read_secret(BOT_TOKEN, environ)
    app_token = read_secret(APP_TOKEN, environ)
    signing_secret = read_secret(SIGNING_SECRET, environ)
    if bot_token is None:
        raise ConfigError(
            f"{BOT_TOKEN} is not set: put the app's Bot User OAuth Token (xoxb-…) in the "
            f"environment, or the path of a file holding it in {BOT_TOKEN}_FILE"
        )
    if not bot_token.startswith("xoxb-"):
        raise ConfigError(f"{BOT_TOKEN} must be a bot token (xoxb-…)")
    if app_token is not None and not app_token.startswith("xapp-"):
        raise ConfigError(f"{APP_TOKEN} must be an app-level token (xapp-…) with connections:write")
    if app_token is None and signing_secret is None:
        raise ConfigError(
            f"set {APP_TOKEN} (Socket Mode, no public URL needed) or {SIGNING_SECRET} "
            "(HTTP mode: Slack posts to this server)"
        )
    return SlackSecrets(bot_token=bot_token, app_token=app_token, signing_secret=signing_secret)
