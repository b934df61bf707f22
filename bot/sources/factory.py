"""Build one LogSource per configured server: local files here, or SSH through a shared pool."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.errors import ConfigError
from bot.settings import ServerConfig, Settings
from bot.sources.runner import CommandRunner, LocalRunner
from bot.sources.source import LogSource

if TYPE_CHECKING:
    from bot.sources.ssh import SSHPool


def runner_for(server: ServerConfig, pool: SSHPool | None) -> CommandRunner:
    """This machine's shell for a local server, else an SSH runner from `pool`."""
    if server.local:
        return LocalRunner(server.name)
    if pool is None:
        raise ConfigError(f"server {server.name} is reached over SSH, which needs an SSHPool")
    return pool.runner_for(server)


def build_sources(settings: Settings, pool: SSHPool | None = None) -> list[LogSource]:
    """Sources for every server; SSH servers need `pool` (connections are reused through it)."""
    return [
        LogSource(server, runner_for(server, pool), settings.limits_for(server))
        for server in settings.servers
    ]


def needs_ssh(settings: Settings) -> bool:
    return any(not server.local for server in settings.servers)
