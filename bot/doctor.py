"""`mailtrace doctor`: can every configured server be reached and searched, and since when?

Strategy: check all servers at once, each the way a search would reach it (SSH through the pool,
with its host key verified, or the local shell), and list its log files with the same
`LogSource.list_files` a search uses. Every failure becomes one row with one sentence, never an
exception (an unexpected one included), so a single broken server cannot hide the state of the
others. The span a server's logs cover (oldest first line to newest modification time) tells how
far back a search can look; under its row, each file shows the span it covers itself.
"""

from __future__ import annotations

import asyncio
import getpass
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, tzinfo

from pydantic import BaseModel, ConfigDict

from bot.errors import MailtraceError, SourceError
from bot.settings import ServerConfig, Settings
from bot.sources.factory import runner_for
from bot.sources.source import LogFile, LogSource
from bot.sources.ssh import SSHPool

logger = logging.getLogger("mailtrace.doctor")

PoolFactory = Callable[[Settings], SSHPool]
MAX_NAMED = 3  # unreadable files named in a row; the rest are counted
FILE_INDENT = "    "


class DoctorRow(BaseModel):
    """The state of one configured server."""

    model_config = ConfigDict(frozen=True)

    server: str
    ok: bool
    reason: str  # one sentence: what works, or what failed and why
    route: str  # "local", "ssh HOST:PORT", "ssh HOST:PORT via BASTION"
    logs: tuple[LogFile, ...] = ()  # every log file found (readable or not), oldest first

    @property
    def files(self) -> int:
        return len(self.logs)

    @property
    def unreadable(self) -> int:
        return sum(not f.readable for f in self.logs)

    @property
    def first(self) -> datetime | None:
        """The oldest line any readable file holds (its mtime when the line is undated)."""
        return min((f.first_seen or f.mtime for f in self.logs if f.readable), default=None)

    @property
    def last(self) -> datetime | None:
        """The newest modification time of a readable file."""
        return max((f.mtime for f in self.logs if f.readable), default=None)

    def span(self, zone: tzinfo = UTC) -> str:
        if self.first is None or self.last is None:
            return "-"
        return f"{_when(self.first, zone)} – {_when(self.last, zone)}"


async def check_servers(settings: Settings, pool_factory: PoolFactory = SSHPool) -> list[DoctorRow]:
    """One row per configured server, in configuration order, all checked concurrently."""
    pool = pool_factory(settings) if any(not s.local for s in settings.servers) else None
    try:
        results = await asyncio.gather(
            *(check_server(settings, s, pool) for s in settings.servers), return_exceptions=True
        )
    finally:
        if pool is not None:
            try:
                await pool.close()
            except Exception as exc:  # the rows are what was asked for; keep them
                logger.warning("ssh_pool_close_failed error=%r", exc)
    return [
        row if isinstance(row, DoctorRow) else _unexpected(server, row)
        for server, row in zip(settings.servers, results, strict=True)
    ]


async def check_server(settings: Settings, server: ServerConfig, pool: SSHPool | None) -> DoctorRow:
    """Reach one server, list its log files and say what a search there can and cannot see."""
    route = _route(server)
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
    """A plain-text table, one line per server followed by one indented line per log file
    (the span it covers, or UNREADABLE), and a closing count."""
    header = ("SERVER", "STATUS", "FILES", f"LOGS COVER ({_zone_name(zone)})", "ROUTE", "DETAIL")
    table = [header]
    for row in rows:
        files = str(row.files) if row.files else "-"
        if row.unreadable:
            files += f" ({row.unreadable} unreadable)"
        status = "ok" if row.ok else "FAILED"
        table.append((row.server, status, files, row.span(zone), row.route, row.reason))
    widths = [max(len(line[i]) for line in table) for i in range(len(header) - 1)]
    lines = []
    for line, server in zip(table, (None, *rows), strict=True):
        cells = (cell.ljust(width) for cell, width in zip(line, widths, strict=False))
        lines.append("  ".join(cells) + "  " + line[-1])
        if server is not None:
            lines += _file_lines(server.logs, zone)
    good = sum(row.ok for row in rows)
    lines.append("")
    lines.append(f"{good} of {len(rows)} servers ok" if rows else "no servers configured")
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _file_lines(files: Sequence[LogFile], zone: tzinfo) -> list[str]:
    """One indented line per file: its path and the span it covers (first line to mtime)."""
    width = max((len(f.path) for f in files), default=0)
    lines = []
    for f in files:
        first = _when(f.first_seen, zone) if f.first_seen is not None else "?"
        state = "" if f.readable else "  UNREADABLE"
        lines.append(f"{FILE_INDENT}{f.path.ljust(width)}  {first} – {_when(f.mtime, zone)}{state}")
    return lines


def _unexpected(server: ServerConfig, exc: BaseException) -> DoctorRow:
    """The row for a check that failed in a way nobody planned for (a bug, most likely)."""
    return DoctorRow(
        server=server.name,
        ok=False,
        route=_route(server),
        reason=f"unexpected error: {type(exc).__name__}: {exc}",
    )


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
        logs=tuple(files),
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
