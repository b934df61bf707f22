""" "Retry now": `postqueue -i QUEUE_ID` on the server that holds the mail.

Strategy: the same command rules as the queue check (`queue_commands`): validated queue IDs,
a configured Postfix configuration directory, every argument through `shlex.quote`, wrapped in
`timeout`. Postfix lets any local user do this (authorized_flush_users = static:anyone). The
script prints each postqueue's exit status after a marker, so a refusal is told, not lost.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from bot.errors import SourceError
from bot.settings import ServerConfig
from bot.sources.commands import wrap
from bot.sources.queue_commands import FATAL_PREFIX, check_config_dir, check_queue_ids
from bot.sources.runner import CommandRunner

STATUS_PREFIX = "!postqueue-i "


class RetryFailed(SourceError):
    reason = "retry refused"


def retry_command(queue_ids: Sequence[str], config_dir: str | None, timeout_s: float = 30) -> str:
    """postqueue -i for each queue ID, each followed by "!postqueue-i STATUS"."""
    conf = ["-c", check_config_dir(config_dir)] if config_dir else []
    steps = [
        f'{shlex.join(["postqueue", *conf, "-i", queue_id])} 2>&1; echo "{STATUS_PREFIX}$?"'
        for queue_id in check_queue_ids(queue_ids)
    ]
    return wrap("; ".join(steps) + "; exit 0", timeout_s)


async def retry_now(
    server: ServerConfig, runner: CommandRunner, queue_ids: Sequence[str], timeout_s: float
) -> None:
    """Ask the server to try these queue IDs now; RetryFailed with postqueue's words if not."""
    lines = [
        line
        async for line in runner.stream(
            retry_command(queue_ids, server.postfix_config_dir, timeout_s)
        )
    ]
    fatal = next((line for line in lines if line.startswith(FATAL_PREFIX)), "")
    statuses = [
        line.removeprefix(STATUS_PREFIX).strip() for line in lines if line.startswith(STATUS_PREFIX)
    ]
    if not statuses or any(s != "0" for s in statuses):
        raise RetryFailed(
            server.name, fatal or f"postqueue exited with status {','.join(statuses) or '?'}"
        )
