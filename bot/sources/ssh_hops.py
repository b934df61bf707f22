"""Which SSH connections reaching a configured server takes: the server's own, and the jump
hosts before it.

Strategy: each server is resolved once into a `Hop` (address, user, keys, known_hosts and the
hop before it). A jump host is either another configured server (its own keys and known_hosts)
or `[user@]host[:port]`, reached with the keys and known_hosts of the server behind it. A chain
that comes round to a server already in it, or grows past `MAX_JUMPS`, is a configuration error.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass

from bot.errors import ConfigError
from bot.settings import ServerConfig, Settings

MAX_JUMPS = 8


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


def resolve_hop(settings: Settings, server: ServerConfig, seen: tuple[str, ...] = ()) -> Hop:
    """The connection chain of `server` (`seen`: the servers behind it, for circles)."""
    if server.name in seen or len(seen) > MAX_JUMPS:
        chain = " -> ".join((*seen, server.name))
        raise ConfigError(f"jump hosts go round in a circle: {chain}")
    if server.host is None:
        raise ConfigError(f"server {server.name} has no host to connect to")
    via = _jump_hop(settings, server, (*seen, server.name)) if server.jump else None
    return Hop(
        label=server.name,
        host=server.host,
        port=server.port,
        user=server.user or getpass.getuser(),
        keys=server.keys,
        use_agent=server.use_agent,
        known_hosts=server.known_hosts,
        insecure=server.insecure_no_host_key_check,
        connect_timeout=settings.limits_for(server).connect_timeout,
        via=via,
    )


def _jump_hop(settings: Settings, server: ServerConfig, seen: tuple[str, ...]) -> Hop:
    spec = server.jump or ""
    for other in settings.servers:
        if other.name == spec:
            return resolve_hop(settings, other, seen)
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
        connect_timeout=settings.limits_for(server).connect_timeout,
    )


def hop_depth(hop: Hop) -> int:
    """How many jump hosts stand before `hop`."""
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
