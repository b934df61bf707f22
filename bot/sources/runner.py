"""The I/O boundary of fetching: run one shell command where the logs are, stream its stdout.

Strategy: `CommandRunner` is the only thing that differs between the local demo and a server
over SSH (like an HTTP transport): `stream(command)` yields decoded stdout lines as they arrive
and, when the command ends, raises a `SourceError` for exit statuses above 1 (grep's 1 is "no
match", not an error). Bytes are decoded with errors="replace": one bad byte never loses a line.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from typing import Protocol

from bot.errors import CommandFailed, CommandTimeout

# asyncio's line limit: no Postfix line is this long, and a longer one is dropped, not fatal
# (the SSH runner cuts at the same length instead; either way one odd line never ends a search).
MAX_LINE = 1024 * 1024
TIMEOUT_EXIT = 124  # coreutils `timeout` when the time ran out
KILLED_EXIT = 137  # `timeout -k` had to KILL


class CommandRunner(Protocol):
    name: str

    def stream(self, command: str) -> AsyncIterator[str]:
        """Yield stdout lines (without newline); raise SourceError on failure."""
        ...

    async def close(self) -> None: ...


# Secrets the bot may hold in its environment; commands it runs never need them.
SECRET_VARIABLES = (
    "SLACK_BOT_TOKEN",
    "SLACK_APP_TOKEN",
    "SLACK_SIGNING_SECRET",
    "MAILTRACE_SSH_KEY_PASSPHRASE",
)


def child_environment() -> dict[str, str]:
    """This process's environment without secrets, for the commands it runs."""
    return {k: v for k, v in os.environ.items() if k not in SECRET_VARIABLES}


def check_exit(name: str, status: int | None, stderr: str) -> None:
    """Translate a finished command's exit status into our errors (0 and 1 are fine)."""
    if status in (0, 1):
        return
    if status in (TIMEOUT_EXIT, KILLED_EXIT):
        raise CommandTimeout(name, "the search command ran past its time limit")
    detail = first_line(stderr) or f"exit status {status}"
    raise CommandFailed(name, detail)


def first_line(text: str, limit: int = 300) -> str:
    """The first non-empty line of a command's stderr, shortened."""
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return ""


class LocalRunner:
    """Runs commands on this machine through /bin/sh (the same text SSH would send)."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def stream(self, command: str) -> AsyncIterator[str]:
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group, so a cancel can end all of it
            limit=MAX_LINE,
            env=child_environment(),
        )
        assert proc.stdout is not None
        assert proc.stderr is not None
        stderr_task = asyncio.ensure_future(proc.stderr.read())
        finished = False
        try:
            while True:
                try:
                    raw = await proc.stdout.readline()
                except ValueError:  # longer than MAX_LINE: drop it (its tail reads as noise)
                    continue
                if not raw:
                    break
                yield raw.decode("utf-8", errors="replace").rstrip("\r\n")
            status = await proc.wait()
            stderr = (await stderr_task).decode("utf-8", errors="replace")
            finished = True
            check_exit(self.name, status, stderr)
        finally:
            if not finished:
                _kill_group(proc)
                stderr_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, ProcessLookupError):
                    await proc.wait()

    async def close(self) -> None:
        return None


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
