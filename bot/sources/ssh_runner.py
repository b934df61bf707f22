"""Running one command on a server over an SSH channel of the pool's (`bot.sources.ssh`): the
SSH side of the `CommandRunner` protocol.

Strategy: `SSHRunner.batches` (and `stream`) opens one channel per command, streams stdout
lines as they arrive (a list per chunk read), reads stderr to its end on the side and keeps its
start, and turns the exit status into our errors through `check_exit`. A consumer that stops
early gets control back at once: the channel is sent TERM and closed. sshd delivers that signal
only to sessions of non-root users without ForceCommand; elsewhere the remote command still
ends at the latest when its `timeout` runs out (see commands.wrap), and its session slot is
given back only when sshd has closed the channel. A local deadline past the command's own
catches a server that stopped answering altogether.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from typing import TYPE_CHECKING, TypeVar

import asyncssh

from bot.errors import CommandFailed, CommandTimeout, ConnectFailed, SourceError
from bot.settings import Limits, ServerConfig
from bot.sources.batches import each
from bot.sources.runner import MAX_LINE, check_exit, first_line
from bot.sources.ssh_connect import describe_error

if TYPE_CHECKING:
    from bot.sources.ssh import Channel, SSHPool

CLIENT_GRACE = 15.0  # past command_timeout (the remote `timeout -k 5` included) before giving up
READ_CHUNK = 64 * 1024
STDERR_KEEP = 16 * 1024

_T = TypeVar("_T")


class SSHRunner:
    """Runs shell command lines on one server through the pool's connection."""

    def __init__(self, pool: SSHPool, server: ServerConfig, limits: Limits) -> None:
        self.name = server.name
        self.server = server
        self.limits = limits
        self._pool = pool

    def stream(self, command: str) -> AsyncIterator[str]:
        """Yield the command's stdout lines as they arrive; raise SourceError when it fails."""
        return each(self.batches(command))

    async def batches(self, command: str) -> AsyncGenerator[list[str], None]:
        """Yield the command's stdout lines as they arrive, a list per chunk read; raise
        SourceError when it fails.

        The remote `timeout` normally ends a slow command (exit 124: CommandTimeout); the local
        deadline only catches a server that stopped answering altogether.
        """
        deadline = asyncio.get_running_loop().time() + self.limits.command_timeout + CLIENT_GRACE
        channel = await self._pool.open_channel(self.server, self.limits, command)
        proc = channel.proc
        stderr_task = asyncio.ensure_future(_read_capped(proc.stderr, STDERR_KEEP))
        finished = False
        try:
            pending = ""
            cutting = False  # inside an over-long line whose start was already yielded
            while chunk := await self._read(proc.stdout.read(READ_CHUNK), deadline):
                data = pending + chunk
                *lines, pending = data.split("\n")
                if cutting and lines:
                    del lines[0]
                    cutting = False
                if "\r" in data:
                    lines = [line.rstrip("\r") for line in lines]
                if len(pending) > MAX_LINE:
                    if not cutting:
                        lines.append(pending[:MAX_LINE])
                    pending, cutting = "", True
                if lines:
                    yield lines
            if pending and not cutting:
                yield [pending.rstrip("\r")]
            await self._read(proc.wait_closed(), deadline)
            stderr = await self._read(stderr_task, deadline)
            finished = True
        finally:
            if not finished:
                stderr_task.cancel()
                _stop(proc)
            self._pool.release_when_closed(channel)
        status = proc.exit_status
        if status is None or status < 0:
            raise self._no_status(channel, stderr)
        check_exit(self.name, status, stderr)

    @property
    def connection_number(self) -> int | None:
        """The open connection's number (see SSHPool.connection_number); None: none open."""
        return self._pool.connection_number(self.server)

    async def close(self) -> None:
        """Nothing to do: the pool owns the connection and closes it (SSHPool.close)."""

    async def _read(self, reading: Awaitable[_T], deadline: float) -> _T:
        try:
            async with asyncio.timeout_at(deadline):
                return await reading
        except TimeoutError as exc:
            raise CommandTimeout(
                self.name, "the server stopped answering before the command ended"
            ) from exc
        except asyncssh.DisconnectError as exc:
            raise ConnectFailed(
                self.name, f"the SSH connection was lost during the search: {exc.reason}"
            ) from exc
        except (asyncssh.Error, OSError) as exc:
            raise CommandFailed(
                self.name, f"reading the command's output failed: {describe_error(exc)}"
            ) from exc

    def _no_status(self, channel: Channel, stderr: str) -> SourceError:
        signal = channel.proc.exit_signal
        if signal is not None:
            return CommandFailed(self.name, f"the command was killed by signal {signal[0]}")
        if channel.conn.is_closed():
            return ConnectFailed(self.name, "the SSH connection was lost during the search")
        return CommandFailed(self.name, first_line(stderr) or "the command ended without a status")


async def _read_capped(stream: asyncssh.SSHReader[str], keep: int) -> str:
    """Read a stream to its end (so it never blocks the channel) and keep its start."""
    kept: list[str] = []
    size = 0
    with contextlib.suppress(asyncssh.Error, OSError):
        while chunk := await stream.read(READ_CHUNK):
            if size < keep:
                kept.append(chunk[: keep - size])
                size += len(kept[-1])
    return "".join(kept)


def _stop(proc: asyncssh.SSHClientProcess[str]) -> None:
    """End a command nobody reads any more: TERM it (where sshd allows it), close the channel."""
    with contextlib.suppress(asyncssh.Error, OSError):
        proc.send_signal("TERM")
    with contextlib.suppress(asyncssh.Error, OSError):
        proc.close()
