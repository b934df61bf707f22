"""Build one LogSource per configured server: local files here, or SSH through a shared pool."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.settings import Settings
from bot.sources.runner import CommandRunner, LocalRunner
from bot.sources.source import LogSource

if TYPE_CHECKING:
    from bot.sources.ssh import SSHPool


def build_sources(settings: Settings, pool: SSHPool | None = None) -> list[LogSource]:
    """Sources for every server; SSH servers need `pool` (connections are reused through it)."""
    sources = []
    for server in settings.servers:
        runner: CommandRunner
        if server.local:
            runner = LocalRunner(server.name)
        else:
            if pool is None:
                raise ValueError("SSH servers need an SSHPool")
            runner = pool.runner_for(server)
        sources.append(LogSource(server, runner, settings.limits_for(server)))
    return sources


def needs_ssh(settings: Settings) -> bool:
    return any(not server.local for server in settings.servers)
