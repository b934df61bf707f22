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
import time
import unicodedata
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, tzinfo

from pydantic import BaseModel, ConfigDict

from bot.errors import MailtraceError, SourceError, failure_words
from bot.i18n import ENGLISH, Language
from bot.settings import ServerConfig, Settings
from bot.sources.factory import runner_for
from bot.sources.runner import CommandRunner
from bot.sources.source import LogFile, LogSource
from bot.sources.ssh import SSHPool

logger = logging.getLogger("mailtrace.doctor")

PoolFactory = Callable[[Settings], SSHPool]
MAX_NAMED = 3  # unreadable files named in a row; the rest are counted
# A remote command that takes longer than this to start and end doing nothing (`true`, best of
# three) is slow to start: the login shell's start-up files do work, or the network's round
# trip is long (a command costs two or three of them). A search sends one to four commands per
# server, each paying it. A plain shell on a nearby server takes a few ms.
SLOW_START_S = 0.1
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


async def check_servers(
    settings: Settings, pool_factory: PoolFactory = SSHPool, lang: Language = ENGLISH
) -> list[DoctorRow]:
    """One row per configured server, in configuration order, all checked concurrently; the
    rows' sentences are in `lang`."""
    pool = pool_factory(settings) if any(not s.local for s in settings.servers) else None
    try:
        results = await asyncio.gather(
            *(check_server(settings, s, pool, lang) for s in settings.servers),
            return_exceptions=True,
        )
    finally:
        if pool is not None:
            try:
                await pool.close()
            except Exception as exc:  # the rows are what was asked for; keep them
                logger.warning("ssh_pool_close_failed error=%r", exc)
    return [
        row if isinstance(row, DoctorRow) else _unexpected(server, row, lang)
        for server, row in zip(settings.servers, results, strict=True)
    ]


async def check_server(
    settings: Settings, server: ServerConfig, pool: SSHPool | None, lang: Language = ENGLISH
) -> DoctorRow:
    """Reach one server, list its log files and say what a search there can and cannot see."""
    route = _route(server)
    limits = settings.limits_for(server)
    budget = limits.connect_timeout + 2 * limits.command_timeout  # connect, list, first lines
    try:
        async with asyncio.timeout(budget):
            if pool is not None and not server.local:
                await pool.connection(server)  # connects and verifies the host key first
            runner = runner_for(server, pool)
            files = await LogSource(server, runner, limits).list_files()
            start = None if server.local else await _command_start(runner)
    except SourceError as exc:
        return DoctorRow(
            server=server.name,
            ok=False,
            route=route,
            reason=f"{failure_words(exc.reason, lang)}: {exc.detail}",
        )
    except TimeoutError:
        return DoctorRow(
            server=server.name,
            ok=False,
            route=route,
            reason=lang.gettext("timed out: no complete answer within {seconds:g} s").format(
                seconds=budget
            ),
        )
    except MailtraceError as exc:  # configuration problems (e.g. a jump host loop)
        return DoctorRow(server=server.name, ok=False, route=route, reason=str(exc))
    row = _row_for_files(server, route, files, lang)
    if start is not None and start > SLOW_START_S:
        reason = lang.gettext(
            "{reason}; every remote command takes {ms} ms before it runs (a plain shell on a"
            " nearby server: a few ms): the login shell's start-up files, or a long network"
            " round trip"
        ).format(reason=row.reason, ms=round(start * 1000))
        row = row.model_copy(update={"reason": reason})
    return row


async def _command_start(runner: CommandRunner) -> float:
    """The best of three runs of `true`: what every remote command costs before it does anything."""
    best = float("inf")
    for _attempt in range(3):
        began = time.perf_counter()
        async for _line in runner.stream("true"):
            pass
        best = min(best, time.perf_counter() - began)
    return best


def render_doctor(rows: Sequence[DoctorRow], zone: tzinfo = UTC, lang: Language = ENGLISH) -> str:
    """A plain-text table, one line per server followed by one indented line per log file
    (the span it covers, or UNREADABLE), and a closing count; its words are in `lang`."""
    _ = lang.gettext
    header = (
        _("SERVER"),
        _("STATUS"),
        _("FILES"),
        _("LOGS COVER ({zone})").format(zone=_zone_name(zone)),
        _("ROUTE"),
        _("DETAIL"),
    )
    table = [header]
    for row in rows:
        files = str(row.files) if row.files else "-"
        if row.unreadable:
            files += " " + _("({n} unreadable)").format(n=row.unreadable)
        status = _("ok") if row.ok else _("FAILED")
        table.append((row.server, status, files, row.span(zone), row.route, row.reason))
    widths = [max(_width(line[i]) for line in table) for i in range(len(header) - 1)]
    lines = []
    for line, server in zip(table, (None, *rows), strict=True):
        cells = (_pad(cell, width) for cell, width in zip(line, widths, strict=False))
        lines.append("  ".join(cells) + "  " + line[-1])
        if server is not None:
            lines += _file_lines(server.logs, zone, lang)
    good = sum(row.ok for row in rows)
    lines.append("")
    if rows:
        lines.append(_("{ok} of {n} servers ok").format(ok=good, n=len(rows)))
    else:
        lines.append(_("no servers configured"))
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _width(text: str) -> int:
    """Columns `text` takes in a terminal: East Asian wide and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def _file_lines(files: Sequence[LogFile], zone: tzinfo, lang: Language) -> list[str]:
    """One indented line per file: its path and the span it covers (first line to mtime)."""
    width = max((len(f.path) for f in files), default=0)
    lines = []
    for f in files:
        first = _when(f.first_seen, zone) if f.first_seen is not None else "?"
        state = "" if f.readable else "  " + lang.gettext("UNREADABLE")
        lines.append(f"{FILE_INDENT}{f.path.ljust(width)}  {first} – {_when(f.mtime, zone)}{state}")
    return lines


def _unexpected(server: ServerConfig, exc: BaseException, lang: Language) -> DoctorRow:
    """The row for a check that failed in a way nobody planned for (a bug, most likely)."""
    return DoctorRow(
        server=server.name,
        ok=False,
        route=_route(server),
        reason=lang.gettext("unexpected error: {error}").format(
            error=f"{type(exc).__name__}: {exc}"
        ),
    )


def _row_for_files(
    server: ServerConfig, route: str, files: list[LogFile], lang: Language
) -> DoctorRow:
    _ = lang.gettext
    readable = [f for f in files if f.readable]
    unreadable = [f for f in files if not f.readable]
    if unreadable:
        names = ", ".join(f.path for f in unreadable[:MAX_NAMED])
        if len(unreadable) > MAX_NAMED:
            names = _("{first} and {n} more").format(first=names, n=len(unreadable) - MAX_NAMED)
        reason = _(
            "permission denied: {n} of {total} log files cannot be read by user {user}: {files}"
        ).format(
            n=len(unreadable),
            total=len(files),
            user=server.user or getpass.getuser(),
            files=names,
        )
    else:
        undated = sum(1 for f in readable if f.first_seen is None)
        reason = _("{n} log files readable").format(n=len(files))
        if undated:
            reason += _("; the first line of {n} could not be dated").format(n=undated)
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
