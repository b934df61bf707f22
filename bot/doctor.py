"""`mailtrace doctor`: can every configured server be reached and searched, and since when?

Strategy: check all servers at once, each the way a search would reach it (SSH through the pool,
with its host key verified, or the local shell), and list its log files with the same
`LogSource.list_files` a search uses. Every failure becomes one row with one sentence, never an
exception, so a single broken server cannot hide the state of the others. The span a server's
logs cover (oldest first line to newest modification time) tells how far back a search can look.
"""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, tzinfo

from pydantic import BaseModel, ConfigDict

from bot.errors import MailtraceError, SourceError
from bot.settings import ServerConfig, Settings
from bot.sources.factory import runner_for
from bot.sources.source import LogFile, LogSource
from bot.sources.ssh import SSHPool

PoolFactory = Callable[[Settings], SSHPool]
MAX_NAMED = 3  # unreadable files named in a row; the rest are counted


class DoctorRow(BaseModel):
    """The state of one configured server."""

    model_config = ConfigDict(frozen=True)

    server: str
    ok: bool
    reason: str  # one sentence: what works, or what failed and why
    route: str  # "local", "ssh HOST:PORT", "ssh HOST:PORT via BASTION"
    files: int = 0  # log files found (readable or not)
    unreadable: int = 0
    first: datetime | None = None  # oldest line any readable file holds
    last: datetime | None = None  # newest modification time of a readable file

    def span(self, zone: tzinfo = UTC) -> str:
        if self.first is None or self.last is None:
            return "-"
        return f"{_when(self.first, zone)} – {_when(self.last, zone)}"


async def check_servers(settings: Settings, pool_factory: PoolFactory = SSHPool) -> list[DoctorRow]:
    """One row per configured server, in configuration order, all checked concurrently."""
    pool = pool_factory(settings) if any(not s.local for s in settings.servers) else None
    try:
        rows = await asyncio.gather(*(check_server(settings, s, pool) for s in settings.servers))
    finally:
        if pool is not None:
            await pool.close()
    return list(rows)


async def check_server(settings: Settings, server: ServerConfig, pool: SSHPool | None) -> DoctorRow:
    """Reach one server, list its log files and say what a search there can and cannot see."""
    route = _route(server)
    if server.source == "journald":
        return DoctorRow(
            server=server.name,
            ok=False,
            route=route,
            reason="journald sources are not supported yet; point `logs` at the log files",
        )
    limits = settings.limits_for(server)
    budget = limits.connect_timeout + 2 * limits.command_timeout  # connect, list, first lines
    try:
        async with asyncio.timeout(budget):
            if pool is not None and not server.local:
                await pool.connection(server)  # connects and verifies the host key first
            files = await LogSource(server, runner_for(server, pool), limits).list_files()
    except SourceError as exc:
        return DoctorRow(
            server=server.name, ok=False, route=route, reason=f"{exc.reason}: {exc.detail}"
        )
    except TimeoutError:
        return DoctorRow(
            server=server.name,
            ok=False,
            route=route,
            reason=f"timed out: no complete answer within {budget:g} s",
        )
    except MailtraceError as exc:  # configuration problems (e.g. a jump host loop)
        return DoctorRow(server=server.name, ok=False, route=route, reason=str(exc))
    return _row_for_files(server, route, files)


def render_doctor(rows: Sequence[DoctorRow], zone: tzinfo = UTC) -> str:
    """A plain-text table, one line per server, and a closing count."""
    header = ("SERVER", "STATUS", "FILES", f"LOGS COVER ({_zone_name(zone)})", "ROUTE", "DETAIL")
    table = [header]
    for row in rows:
        files = str(row.files) if row.files else "-"
        if row.unreadable:
            files += f" ({row.unreadable} unreadable)"
        status = "ok" if row.ok else "FAILED"
        table.append((row.server, status, files, row.span(zone), row.route, row.reason))
    widths = [max(len(line[i]) for line in table) for i in range(len(header) - 1)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False))
        + "  "
        + line[-1]
        for line in table
    ]
    good = sum(row.ok for row in rows)
    lines.append("")
    lines.append(f"{good} of {len(rows)} servers ok" if rows else "no servers configured")
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _row_for_files(server: ServerConfig, route: str, files: list[LogFile]) -> DoctorRow:
    readable = [f for f in files if f.readable]
    unreadable = [f for f in files if not f.readable]
    if unreadable:
        names = ", ".join(f.path for f in unreadable[:MAX_NAMED])
        more = f" and {len(unreadable) - MAX_NAMED} more" if len(unreadable) > MAX_NAMED else ""
        who = server.user or getpass.getuser()
        reason = (
            f"permission denied: {len(unreadable)} of {len(files)} log files cannot be read "
            f"by user {who}: {names}{more}"
        )
    else:
        undated = sum(1 for f in readable if f.first_seen is None)
        note = f"; the first line of {undated} could not be dated" if undated else ""
        reason = f"{len(files)} log files readable{note}"
    return DoctorRow(
        server=server.name,
        ok=not unreadable,
        reason=reason,
        route=route,
        files=len(files),
        unreadable=len(unreadable),
        first=min((f.first_seen or f.mtime for f in readable), default=None),
        last=max((f.mtime for f in readable), default=None),
    )


def _route(server: ServerConfig) -> str:
    if server.local:
        return "local"
    route = f"ssh {server.user + '@' if server.user else ''}{server.host}:{server.port}"
    return f"{route} via {server.jump}" if server.jump else route


def _when(moment: datetime, zone: tzinfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _zone_name(zone: tzinfo) -> str:
    return str(getattr(zone, "key", None) or datetime.now(zone).tzname() or "UTC")
