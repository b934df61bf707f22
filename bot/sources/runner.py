"""The I/O boundary of fetching: run one shell command where the logs are, stream its stdout.

Strategy: `CommandRunner` is the only thing that differs between the local demo and a server
over SSH (like an HTTP transport): `batches(command)` yields decoded stdout lines as they arrive,
a list per chunk read (one await per 64 KiB, not per line: a broad search reads a million
lines), and, when the command ends, raises a `SourceError` for exit statuses above 1 (grep's 1
is "no match", not an error); `stream(command)` is the same line by line. Bytes are decoded
with errors="replace": one bad byte never loses a line.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Protocol

from bot.errors import CommandFailed, CommandTimeout
from bot.sources.batches import each

# No Postfix line is this long: a longer one is cut here (its start kept, the rest dropped),
# so one odd line never ends a search nor holds its whole length in memory.
MAX_LINE = 1024 * 1024
READ_CHUNK = 64 * 1024  # bytes per read of a command's output
TIMEOUT_EXIT = 124  # coreutils `timeout` when the time ran out
KILLED_EXIT = 137  # `timeout -k` had to KILL


class CommandRunner(Protocol):
    name: str

    def stream(self, command: str) -> AsyncIterator[str]:
        """Yield stdout lines (without newline); raise SourceError on failure."""
        ...

    def batches(self, command: str) -> AsyncGenerator[list[str], None]:
        """The same lines, as lists of those that arrived together (never empty)."""
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

    def stream(self, command: str) -> AsyncIterator[str]:
        return each(self.batches(command))

    async def batches(self, command: str) -> AsyncGenerator[list[str], None]:
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group, so a cancel can end all of it
            env=child_environment(),
        )
        assert proc.stdout is not None
        assert proc.stderr is not None
        stderr_task = asyncio.ensure_future(proc.stderr.read())
        finished = False
        try:
            lines = Lines()
            while chunk := await proc.stdout.read(READ_CHUNK):
                if batch := lines.feed(chunk):
                    yield batch
            if batch := lines.end():
                yield batch
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


class Lines:
    """Splits a command's output, chunk by chunk, into lines: without their newline (nor a
    carriage return before it), decoded with errors="replace", an over-long line cut at
    MAX_LINE (its start kept). A chunk may end inside a line or a character: that part waits
    for the next chunk."""

    def __init__(self) -> None:
        self._pending = b""
        self._cutting = False  # inside an over-long line whose start was already given

    def feed(self, chunk: bytes) -> list[str]:
        data = self._pending + chunk if self._pending else chunk
        end = data.rfind(b"\n")
        if end < 0:
            self._pending = b"" if self._cutting else data
            return self._cut()
        self._pending = data[end + 1 :]
        # No byte of a multi-byte character is a newline: decoding the whole lines at once
        # replaces the same bytes as decoding them one by one.
        lines = data[:end].decode("utf-8", errors="replace").split("\n")
        if self._cutting:
            del lines[0]
            self._cutting = False
        if b"\r" in data:
            lines = [line.rstrip("\r") for line in lines]
        if len(data) > MAX_LINE:  # only then can a line be over-long
            lines = [line[:MAX_LINE] if len(line) > MAX_LINE else line for line in lines]
        return lines + self._cut()

    def end(self) -> list[str]:
        """The last line, when the output does not end with a newline."""
        rest, self._pending = self._pending, b""
        if not rest or self._cutting:
            return []
        return [rest.decode("utf-8", errors="replace").rstrip("\r")]

    def _cut(self) -> list[str]:
        """An unfinished line longer than MAX_LINE: give its start now, drop the rest."""
        if len(self._pending) <= MAX_LINE:
            return []
        start, self._pending = self._pending[:MAX_LINE], b""
        if self._cutting:
            return []
        self._cutting = True
        return [start.decode("utf-8", errors="replace").rstrip("\r")]
