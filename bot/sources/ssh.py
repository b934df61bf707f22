"""Running commands on mail servers over SSH (asyncssh): one reused connection per server.

Strategy: `SSHPool` owns the connections. Each server is resolved once into a `Hop` (address,
user, keys, known_hosts and the hop before it, for jump hosts); a connection is opened lazily on
first use, kept with keepalives, shared by every query, and opened again when it was lost. A jump
host is an ordinary connection of its own (own host key check, own keys), passed to asyncssh as
`tunnel=`, and shared by every server behind it. A semaphore per connection keeps the number of
channels at once under `max_sessions` (OpenSSH's MaxSessions is 10 by default). sshd frees its
own session slot a moment after the channel's close exchange, in its next pass over its channels:
a slot is handed back only after a keepalive round trip that follows the close, so max_sessions
equal to MaxSessions never oversteps. Should sshd still refuse a channel (another client on the
same account, a smaller MaxSessions), the open is retried after short pauses before the server
counts as failed.

`SSHRunner.batches` (and `stream`) is the SSH side of the `CommandRunner` protocol: it opens one
channel per command, streams stdout lines as they arrive (a list per chunk read) and turns the
exit status into our errors through `check_exit`. A consumer that stops early gets control
back at once: the channel is sent TERM and closed. sshd delivers that signal only to sessions
of non-root users without ForceCommand; elsewhere the remote command still ends at the latest
when its `timeout` runs out (see commands.wrap), and its session slot is given back only when
sshd has closed the channel.

Every asyncssh and socket error is translated here, at the boundary, into bot.errors with a
sentence for the person asking. Key passphrases come from the environment and are never put into
a message or a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import os
import socket
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import asyncssh

from bot import timings
from bot.errors import (
    AuthFailed,
    CommandFailed,
    CommandTimeout,
    ConfigError,
    ConnectFailed,
    HostKeyRejected,
    SourceError,
)
from bot.settings import Limits, ServerConfig, Settings
from bot.sources.runner import MAX_LINE, check_exit, first_line

log = logging.getLogger(__name__)

PASSPHRASE_ENV = "MAILTRACE_SSH_KEY_PASSPHRASE"  # noqa: S105 (the variable's name, not a secret)
KEEPALIVE_INTERVAL = 30.0  # seconds between keepalives on an idle connection
KEEPALIVE_COUNT_MAX = 3  # unanswered keepalives before the connection counts as lost
CLIENT_GRACE = 15.0  # past command_timeout (the remote `timeout -k 5` included) before giving up
READ_CHUNK = 64 * 1024
STDERR_KEEP = 16 * 1024
MAX_JUMPS = 8
# A refused channel open (sshd's MaxSessions reached) is tried again after these pauses.
REFUSED_RETRY_S = (0.1, 0.25, 0.5, 1.0, 2.0)
SLOT_CONFIRM_S = 5.0  # at most this long for sshd's answer to the round trip after a close

_T = TypeVar("_T")


@dataclass(frozen=True)
class Hop:
    """One SSH connection to make: where, as whom, with which keys, and through which hop."""

    label: str  # for messages: the configured server's name, or the `user@host:port` of a jump
    host: str
    port: int
    user: str
    keys: tuple[str, ...]
    use_agent: bool
    known_hosts: str | None
    insecure: bool
    connect_timeout: float
    via: Hop | None = None

    @property
    def address(self) -> str:
        """The host as known_hosts spells it: `host`, or `[host]:port` off port 22."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"


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
        return self._hop(server, seen=())

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
        for hop, conn in sorted(connections, key=lambda item: -_depth(item[0])):
            conn.close()
            with contextlib.suppress(Exception):
                await conn.wait_closed()
            log.debug("closed SSH connection to %s", hop.label)
        for task in list(self._lingering):
            task.cancel()
        if self._lingering:
            await asyncio.gather(*self._lingering, return_exceptions=True)

    # -- connections -------------------------------------------------------------------------

    def _hop(self, server: ServerConfig, seen: tuple[str, ...]) -> Hop:
        if server.name in seen or len(seen) > MAX_JUMPS:
            chain = " -> ".join((*seen, server.name))
            raise ConfigError(f"jump hosts go round in a circle: {chain}")
        if server.host is None:
            raise ConfigError(f"server {server.name} has no host to connect to")
        via = self._jump_hop(server, (*seen, server.name)) if server.jump else None
        return Hop(
            label=server.name,
            host=server.host,
            port=server.port,
            user=server.user or getpass.getuser(),
            keys=server.keys,
            use_agent=server.use_agent,
            known_hosts=server.known_hosts,
            insecure=server.insecure_no_host_key_check,
            connect_timeout=self.settings.limits_for(server).connect_timeout,
            via=via,
        )

    def _jump_hop(self, server: ServerConfig, seen: tuple[str, ...]) -> Hop:
        spec = server.jump or ""
        for other in self.settings.servers:
            if other.name == spec:
                return self._hop(other, seen)
        # `[user@]host[:port]`: reached with the keys and known_hosts of the server behind it.
        user, _, hostport = spec.rpartition("@")
        host, port = _split_host_port(hostport, spec)
        return Hop(
            label=spec,
            host=host,
            port=port,
            user=user or server.user or getpass.getuser(),
            keys=server.keys,
            use_agent=server.use_agent,
            known_hosts=server.known_hosts,
            insecure=server.insecure_no_host_key_check,
            connect_timeout=self.settings.limits_for(server).connect_timeout,
        )

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
                conn = await self._open(hop, name, tunnel)
            self._connections[hop] = conn
            self._opened[hop] = self._opened.get(hop, 0) + 1
            return conn

    def connection_number(self, server: ServerConfig) -> int | None:
        """Which of the pool's connections to this server is open (1, then 2 after a loss...);
        None when none is open: the next command connects."""
        hop = self.hop_for(server)
        conn = self._connections.get(hop)
        return None if conn is None or conn.is_closed() else self._opened.get(hop, 0)

    async def _open(
        self, hop: Hop, name: str, tunnel: asyncssh.SSHClientConnection | None
    ) -> asyncssh.SSHClientConnection:
        where = f"{hop.host} port {hop.port}"
        prefix = "" if hop.label == name else f"jump host {hop.label} ({where}): "
        if hop.insecure:
            log.warning(
                "HOST KEY CHECK DISABLED for %s (%s): insecure_no_host_key_check is set, so "
                "anyone on the network path can pose as this server. Never use this in production.",
                hop.label,
                where,
            )
        options: dict[str, Any] = {
            "username": hop.user,
            "known_hosts": None if hop.insecure else self._known_hosts(hop, name, prefix),
            "client_keys": self._client_keys(hop, name, prefix),
            "agent_path": os.environ.get("SSH_AUTH_SOCK") if hop.use_agent else None,
            "password_auth": False,
            "kbdint_auth": False,
            "config": None,  # the YAML is the whole configuration; ~/.ssh/config is not read
            "connect_timeout": hop.connect_timeout,
            "login_timeout": hop.connect_timeout,
            "keepalive_interval": KEEPALIVE_INTERVAL,
            "keepalive_count_max": KEEPALIVE_COUNT_MAX,
        }
        if tunnel is not None:
            options["tunnel"] = tunnel
        log.debug("connecting to %s (%s as %s)", hop.label, where, hop.user)
        try:
            return await asyncssh.connect(hop.host, hop.port, **options)
        except asyncssh.HostKeyNotVerifiable as exc:
            raise HostKeyRejected(
                name,
                f"{prefix}not in known_hosts or changed; check known_hosts for {hop.address}",
            ) from exc
        except asyncssh.PermissionDenied as exc:
            raise AuthFailed(
                name,
                f"{prefix}{hop.host} accepted none of the bot's keys for user {hop.user}; "
                "check that user's authorized_keys there",
            ) from exc
        except asyncssh.ChannelOpenError as exc:  # the jump host could not reach the server
            raise ConnectFailed(
                name, f"the jump host could not open a connection to {where}: {exc.reason}"
            ) from exc
        except asyncssh.DisconnectError as exc:
            raise ConnectFailed(
                name, f"{prefix}{where} ended the SSH handshake: {exc.reason}"
            ) from exc
        except TimeoutError as exc:
            raise ConnectFailed(
                name, f"{prefix}no SSH answer from {where} within {hop.connect_timeout:g} s"
            ) from exc
        except ConnectionRefusedError as exc:
            raise ConnectFailed(
                name, f"{prefix}connection refused by {where}; is sshd running there?"
            ) from exc
        except socket.gaierror as exc:
            raise ConnectFailed(name, f"{prefix}cannot resolve host name {hop.host}") from exc
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise ConnectFailed(name, f"{prefix}cannot connect to {where}: {reason}") from exc
        except asyncssh.Error as exc:
            raise ConnectFailed(name, f"{prefix}SSH to {where} failed: {exc.reason}") from exc

    def _known_hosts(self, hop: Hop, name: str, prefix: str) -> asyncssh.SSHKnownHosts:
        path = Path(hop.known_hosts or "~/.ssh/known_hosts").expanduser()
        try:
            return asyncssh.read_known_hosts(str(path))
        except OSError as exc:
            raise HostKeyRejected(
                name, f"{prefix}cannot read the known_hosts file {path}: {exc.strerror}"
            ) from exc
        except ValueError as exc:
            raise HostKeyRejected(name, f"{prefix}the known_hosts file {path} is invalid") from exc

    def _client_keys(self, hop: Hop, name: str, prefix: str) -> list[asyncssh.SSHKey] | tuple[()]:
        if not hop.keys:
            return ()  # asyncssh's defaults: ~/.ssh/id_ed25519, id_ecdsa, id_rsa …
        passphrase = os.environ.get(PASSPHRASE_ENV) or None
        keys = []
        for path in hop.keys:
            try:
                keys.append(asyncssh.read_private_key(path, passphrase))
            except OSError as exc:
                raise AuthFailed(
                    name, f"{prefix}cannot read key file {path}: {exc.strerror}"
                ) from exc
            except asyncssh.KeyEncryptionError as exc:
                # asyncssh's messages name the problem, never the passphrase itself.
                if "ncorrect passphrase" in str(exc):
                    detail = f"wrong passphrase in {PASSPHRASE_ENV}"
                elif "bcrypt" in str(exc):
                    detail = "the Python package bcrypt is needed for encrypted OpenSSH keys"
                else:
                    detail = str(exc)
                raise AuthFailed(name, f"{prefix}cannot decrypt key file {path}: {detail}") from exc
            except asyncssh.KeyImportError as exc:
                if passphrase is None and "assphrase" in str(exc):
                    detail = f"is encrypted; set {PASSPHRASE_ENV}"
                else:
                    detail = "is not a private key asyncssh can read"
                raise AuthFailed(name, f"{prefix}key file {path} {detail}") from exc
        return keys

    # -- channels ------------------------------------------------------------------------------

    async def _open_channel(self, server: ServerConfig, limits: Limits, command: str) -> _Channel:
        """A channel running `command`, holding one of its connection's session slots."""
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
                            server.name, f"the SSH connection was lost: {_reason(exc)}"
                        ) from exc
                    reconnected = True
                else:
                    return _Channel(proc, conn, sessions)
        except BaseException:
            sessions.release()
            raise

    def _forget(self, hop: Hop, conn: asyncssh.SSHClientConnection) -> None:
        if self._connections.get(hop) is conn:
            del self._connections[hop]
        conn.abort()

    def _release_when_closed(self, channel: _Channel) -> None:
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
class _Channel:
    proc: asyncssh.SSHClientProcess[str]
    conn: asyncssh.SSHClientConnection
    sessions: asyncio.Semaphore


class SSHRunner:
    """Runs shell command lines on one server through the pool's connection."""

    def __init__(self, pool: SSHPool, server: ServerConfig, limits: Limits) -> None:
        self.name = server.name
        self.server = server
        self.limits = limits
        self._pool = pool

    async def stream(self, command: str) -> AsyncIterator[str]:
        """Yield the command's stdout lines as they arrive; raise SourceError when it fails."""
        async with contextlib.aclosing(self.batches(command)) as batches:
            async for batch in batches:
                for line in batch:
                    yield line

    async def batches(self, command: str) -> AsyncGenerator[list[str], None]:
        """Yield the command's stdout lines as they arrive, a list per chunk read; raise
        SourceError when it fails.

        The remote `timeout` normally ends a slow command (exit 124: CommandTimeout); the local
        deadline only catches a server that stopped answering altogether.
        """
        deadline = asyncio.get_running_loop().time() + self.limits.command_timeout + CLIENT_GRACE
        channel = await self._pool._open_channel(self.server, self.limits, command)
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
            self._pool._release_when_closed(channel)
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
                self.name, f"reading the command's output failed: {_reason(exc)}"
            ) from exc

    def _no_status(self, channel: _Channel, stderr: str) -> SourceError:
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


def _stop(proc: asyncssh.SSHClientProcess[str]) -> None:
    """End a command nobody reads any more: TERM it (where sshd allows it), close the channel."""
    with contextlib.suppress(asyncssh.Error, OSError):
        proc.send_signal("TERM")
    with contextlib.suppress(asyncssh.Error, OSError):
        proc.close()


def _retrieved(task: asyncio.Task[Any]) -> None:
    """An early connection nobody came to use failed: its error is not news (the search
    reports a server's failure where it uses the server)."""
    if not task.cancelled():
        task.exception()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, asyncssh.Error):
        return str(exc.reason)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _depth(hop: Hop) -> int:
    depth = 0
    while hop.via is not None:
        hop, depth = hop.via, depth + 1
    return depth


def _split_host_port(hostport: str, spec: str) -> tuple[str, int]:
    if hostport.startswith("["):  # [2001:db8::1]:2222
        host, _, rest = hostport[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif hostport.count(":") == 1:
        host, _, port_text = hostport.partition(":")
    else:
        host, port_text = hostport, ""
    if not host:
        raise ConfigError(f"jump host {spec!r}: write it as user@host:port")
    try:
        port = int(port_text) if port_text else 22
    except ValueError as exc:
        raise ConfigError(f"jump host {spec!r}: the port must be a number") from exc
    if not 1 <= port <= 65535:
        raise ConfigError(f"jump host {spec!r}: the port must be between 1 and 65535")
    return host, port
