"""Structured logs: one `key=value` line per record on stderr, with Slack tokens redacted.

Strategy: our own messages are written as `event_name key=value ...`; the formatter prefixes
time, level and logger and leaves them as they are. Prose from libraries becomes `msg="..."`, and
a traceback is folded into one quoted `exc=` field, so every record is exactly one line that
`grep` and log shippers can split. Anything shaped like a Slack token is masked on the way out,
whoever logged it (slack_sdk logs request headers at DEBUG; that level is never enabled for it).
Libraries' records (Bolt, slack_sdk) may quote a whole request — a bad-signature request, an
unhandled one — with user IDs and the query text: those details are cut before the record is
written (the audit log is the one place that records who asked what), and a library's traceback
becomes its one-line error.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from datetime import UTC, datetime

_TOKEN = re.compile(r"\b(xox[a-z]|xapp)-[A-Za-z0-9-]+")
_EVENT = re.compile(r"^[a-z][a-z0-9_]*(?: [a-z_][a-z0-9_.]*=.*)?$", re.DOTALL)
LEVEL_ENV = "MAILTRACE_LOG_LEVEL"


def redact(text: str) -> str:
    """Mask Slack tokens (xoxb-…, xoxp-…, xapp-…) in text."""
    return _TOKEN.sub(lambda m: f"{m.group(1)}-[redacted]", text)


def quote(value: object) -> str:
    """A value as it appears after `key=`: bare when simple, else JSON-quoted."""
    text = str(value)
    if text and re.fullmatch(r"[A-Za-z0-9_.:/@+,-]+", text):
        return text
    return json.dumps(text, ensure_ascii=False)


# Loggers of code that is not ours: Bolt's own, our app's Bolt logger, slack_sdk, asyncssh.
LIBRARY_LOGGERS = ("slack_bolt", "mailtrace.bolt", "slack_sdk", "asyncssh", "aiohttp")
# Where a library's message starts quoting a request (Bolt: "body: {...}", "Unhandled request
# ({...})", "request body: ..."): everything from there on is withheld.
_REQUEST_DETAIL = re.compile(r"\(signature:|\bbody\b|\bpayload\b|[({]\s*['\"]", re.IGNORECASE)
WITHHELD = "[request details withheld]"


class LibraryPrivacyFilter(logging.Filter):
    """Cuts request contents and tracebacks out of libraries' records (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(LIBRARY_LOGGERS):
            return True
        message = record.getMessage()
        if message.startswith("Invalid request signature detected"):
            message = "request_refused reason=bad_signature"
        else:
            found = _REQUEST_DETAIL.search(message)
            if found is not None:
                message = message[: found.start()].rstrip(" :(") + " " + WITHHELD
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            text = str(error).strip().splitlines()
            detail = text[0] if text else ""
            message += f" error={quote(f'{type(error).__name__}: {detail}'[:300])}"
            record.exc_info = None
            record.exc_text = None
        record.msg, record.args = message, ()
        return True


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        message = record.getMessage()
        body = message if _EVENT.match(message) and "\n" not in message else f"msg={quote(message)}"
        line = (
            f"time={moment.replace('+00:00', 'Z')} level={record.levelname.lower()} "
            f"logger={record.name} {body}"
        )
        if record.exc_info:
            line += f" exc={quote(self.formatException(record.exc_info))}"
        return redact(line)


def configure_logging(level: str | None = None) -> None:
    """Send every log record to stderr as one key=value line (level from $MAILTRACE_LOG_LEVEL)."""
    name = (level or os.environ.get(LEVEL_ENV) or "INFO").upper()
    numeric = logging.getLevelName(name)
    if not isinstance(numeric, int):
        numeric = logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    handler.addFilter(LibraryPrivacyFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    # slack_sdk prints request headers (the bot token) at DEBUG: never below INFO for it.
    for noisy in ("slack_sdk", "asyncssh"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.INFO))
