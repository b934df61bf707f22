"""Connections to mail servers over SSH (asyncssh): one reused connection per server.

Strategy: `SSHPool` owns the connections. Each server is resolved once into a `Hop`
(`ssh_hops`: address, user, keys, known_hosts and the hop before it, for jump hosts); a
connection is opened (`ssh_connect`) lazily on first use, kept with keepalives, shared by every
query, and opened again when it was lost. A jump host is an ordinary connection of its own (own
host key check, own keys), passed to asyncssh as `tunnel=`, and shared by every server behind
it. A semaphore per connection keeps the number of channels at once under `max_sessions`
(OpenSSH's MaxSessions is 10 by default). sshd frees its own session slot a moment after the
channel's close exchange, in its next pass over its channels: a slot is handed back only after a
keepalive round trip that follows the close, so max_sessions equal to MaxSessions never
oversteps. Should sshd still refuse a channel (another client on the same account, a smaller
MaxSessions), the open is retried after short pauses before the server counts as failed.
Commands run on the pool's channels through `ssh_runner.SSHRunner`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import asyncssh

from bot import timings
from bot.errors import CommandFailed, ConfigError, ConnectFailed
from bot.settings import Limits, ServerConfig, Settings
from bot.sources.ssh_connect import describe_error, open_connection
from bot.sources.ssh_hops import Hop, hop_depth, resolve_hop
from bot.sources.ssh_runner import SSHRunner

log = logging.getLogger(__name__)

# A refused channel open (sshd's MaxSessions reached) is tried again after these pauses.
REFUSED_RETRY_S = (0.1, 0.25, 0.5, 1.0, 2.0)
SLOT_CONFIRM_S = 5.0  # at most this long for sshd's answer to the round trip after a close


class SSHPool:
    """One lazily opened, reused SSH connection per server (and per jump host)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._connections: dict[Hop, asyncssh.SSHClientConnection] = {}
        self._opened: dict[Hop, int] = {}  # connections opened so far, per hop
        self._locks: dict[Hop, asyncio.Lock] = {}
        self._sessions: dict[Hop, asyncio.Semaphore] = {}
        self._lingering: set[asyncio.Task[None]] = set()
        self._early: dict[Hop, asyncio.Task[asyncssh.SSHClientConnection]] = {}
        self._closed = False

    async def __aenter__(self) -> SSHPool:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def runner_for(self, server: ServerConfig) -> SSHRunner:
        """A CommandRunner that runs commands on `server` through this pool."""
        if server.local:
            raise ConfigError(f"server {server.name} is local: it needs no SSH runner")
        return SSHRunner(self, server, self.settings.limits_for(server))

    def hop_for(self, server: ServerConfig) -> Hop:
        """The resolved connection chain of a server (its jump hosts first)."""
        return resolve_hop(self.settings, server)

    async def connection(self, server: ServerConfig) -> asyncssh.SSHClientConnection:
        """The open connection to `server`, connecting (and verifying its host key) if needed."""
        return await self._connect(self.hop_for(server), server.name)

    def connect_early(self, servers: Iterable[ServerConfig]) -> None:
        """Begin connecting to `servers` in the background, so that the handshake overlaps
        what the caller does meanwhile (the CLI's remaining imports). The first command on a
        server takes that attempt's outcome, its connection or its error: a server that cannot
        be reached is tried once, not twice. A server whose configuration cannot be resolved is
        left to the search, which reports it."""
        for server in servers:
            try:
                hop = self.hop_for(server)
            except ConfigError:
                continue
            if hop not in self._early:
                task = asyncio.ensure_future(self._connect_now(hop, server.name))
                task.add_done_callback(_retrieved)
                self._early[hop] = task

    async def close(self) -> None:
        """Close every connection, servers before the jump hosts they go through."""
        self._closed = True
        early = list(self._early.values())
        self._early.clear()
        for attempt in early:
            attempt.cancel()
        if early:
            await asyncio.gather(*early, return_exceptions=True)
        connections = list(self._connections.items())
        self._connections.clear()
        for hop, conn in sorted(connections, key=lambda item: -hop_depth(item[0])):
            conn.close()
            with contextlib.suppress(Exception):
                await conn.wait_closed()
            log.debug("closed SSH connection to %s", hop.label)
        for task in list(self._lingering):
            task.cancel()
        if self._lingering:
            await asyncio.gather(*self._lingering, return_exceptions=True)

    # -- connections -------------------------------------------------------------------------

    def _sessions_for(self, hop: Hop, limits: Limits) -> asyncio.Semaphore:
        if hop not in self._sessions:
            self._sessions[hop] = asyncio.Semaphore(limits.max_sessions)
        return self._sessions[hop]

    async def _connect(self, hop: Hop, name: str) -> asyncssh.SSHClientConnection:
        early = self._early.pop(hop, None)
        if early is not None:  # begun by connect_early: the rest of its wait counts as connect
            with timings.phase("connect", name):
                return await early
        return await self._connect_now(hop, name)

    async def _connect_now(self, hop: Hop, name: str) -> asyncssh.SSHClientConnection:
        if self._closed:
            raise ConnectFailed(name, "the SSH pool is already closed")
        lock = self._locks.setdefault(hop, asyncio.Lock())
        async with lock:
            conn = self._connections.get(hop)
            if conn is not None and not conn.is_closed():
                return conn
            if conn is not None:
                log.info("SSH connection to %s was lost; connecting again", hop.label)
                del self._connections[hop]
            with timings.phase("connect", name):
                tunnel = await self._connect(hop.via, name) if hop.via is not None else None
                conn = await open_connection(hop, name, tunnel)
            self._connections[hop] = conn
            self._opened[hop] = self._opened.get(hop, 0) + 1
            return conn

    def connection_number(self, server: ServerConfig) -> int | None:
        """Which of the pool's connections to this server is open (1, then 2 after a loss...);
        None when none is open: the next command connects."""
        hop = self.hop_for(server)
        conn = self._connections.get(hop)
        return None if conn is None or conn.is_closed() else self._opened.get(hop, 0)

    # -- channels ------------------------------------------------------------------------------

    async def open_channel(self, server: ServerConfig, limits: Limits, command: str) -> Channel:
        """A channel running `command`, holding one of its connection's session slots (for
        `SSHRunner`, which gives it back through `release_when_closed`)."""
        hop = self.hop_for(server)
        sessions = self._sessions_for(hop, limits)
        await sessions.acquire()
        try:
            reconnected = False
            pauses = iter(REFUSED_RETRY_S)
            while True:
                conn = await self._connect(hop, server.name)
                try:
                    proc = await conn.create_process(
                        command, encoding="utf-8", errors="replace", stdin=asyncssh.DEVNULL
                    )
                except asyncssh.ChannelOpenError as exc:
                    # sshd refuses a session over its MaxSessions (another client on the same
                    # account, a smaller MaxSessions): a slot is usually free a moment later.
                    pause = next(pauses, None)
                    if pause is None:
                        raise CommandFailed(
                            server.name, f"the server refused a new SSH session: {exc.reason}"
                        ) from exc
                    log.info("ssh_session_refused server=%s retry_in=%.2fs", server.name, pause)
                    await asyncio.sleep(pause)
                except (asyncssh.DisconnectError, OSError) as exc:
                    # A reused connection can die between two queries: connect again, once.
                    self._forget(hop, conn)
                    if reconnected:
                        raise ConnectFailed(
                            server.name, f"the SSH connection was lost: {describe_error(exc)}"
                        ) from exc
                    reconnected = True
                else:
                    return Channel(proc, conn, sessions)
        except BaseException:
            sessions.release()
            raise

    def _forget(self, hop: Hop, conn: asyncssh.SSHClientConnection) -> None:
        if self._connections.get(hop) is conn:
            del self._connections[hop]
        conn.abort()

    def release_when_closed(self, channel: Channel) -> None:
        """Give the session slot back once sshd has freed it, without waiting here."""

        async def wait() -> None:
            try:
                with contextlib.suppress(Exception):
                    await channel.proc.wait_closed()
                    await asyncio.wait_for(_round_trip(channel.conn), SLOT_CONFIRM_S)
            finally:
                channel.sessions.release()

        task = asyncio.ensure_future(wait())
        self._lingering.add(task)
        task.add_done_callback(self._lingering.discard)


@dataclass
class Channel:
    """A command's channel: its process, its connection, and the session slots it holds one of
    (given back through `SSHPool.release_when_closed`)."""

    proc: asyncssh.SSHClientProcess[str]
    conn: asyncssh.SSHClientConnection
    sessions: asyncio.Semaphore


async def _round_trip(conn: asyncssh.SSHClientConnection) -> None:
    """A global request sshd answers after it has handled everything sent before it.

    sshd reads the close and this request in one pass and frees the closed session's slot
    before it reads anything newer, so after the answer a new channel open finds the slot free.
    The request is OpenSSH's own keepalive (answered even though unknown); asyncssh sends it
    through a private method, so without it a short pause stands in.
    """
    request = getattr(conn, "_make_global_request", None)
    if request is None or conn.is_closed():
        await asyncio.sleep(0.05)
        return
    await request(b"keepalive@openssh.com")


def _retrieved(task: asyncio.Task[Any]) -> None:
    """An early connection nobody came to use failed: its error is not news (the search
    reports a server's failure where it uses the server)."""
    if not task.cancelled():
        task.exception()
