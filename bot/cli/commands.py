"""What each `mailtrace` subcommand runs: trace, watch, doctor and serve.

Strategy: each handler loads the configuration (--log, --config, $MAILTRACE_CONFIG or the
bundled demo), calls the library, writes the answer to stdout and returns the exit status. The
search, its sources and renderers are imported by the command that runs them, so that one
command never pays for another's start-up.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.cli.arguments import zone_named
from bot.cli.exits import EXIT_FOUND, EXIT_NOTHING, EXIT_PENDING, EXIT_SERVERS
from bot.errors import ConfigError, UsageError
from bot.i18n import Language, language, language_from_env
from bot.query import parse_query

if TYPE_CHECKING:
    from bot.result import SearchResult
    from bot.settings import Settings

DEMO_CONFIG = Path(__file__).resolve().parents[2] / "config" / "demo.yaml"


def load_config(args: argparse.Namespace) -> Settings:
    from pydantic import ValidationError

    from bot.settings import load_settings, local_settings

    if getattr(args, "log", None):
        try:
            return local_settings(args.log, zone=args.log_tz, year=args.year, central=args.central)
        except ValidationError as exc:
            raise UsageError(
                "; ".join(f"--log: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors())
            ) from exc
    path = args.config or os.environ.get("MAILTRACE_CONFIG")
    if path is None:
        if not DEMO_CONFIG.exists():  # installed from a wheel: the demo lives in the repository
            raise ConfigError(
                "no configuration: give --config FILE (or set MAILTRACE_CONFIG), or --log PATH"
            )
        path = str(DEMO_CONFIG)
    return load_settings(path)


async def trace(
    settings: Settings,
    text: str,
    zone: ZoneInfo,
    now: datetime,
    lang: Language | None = None,
    *,
    queue: bool = False,
    renderers: Sequence[str] = (),
) -> SearchResult:
    """Run one query against the configured servers (the library call behind the CLI);
    `queue`: then ask the live queue about mail that is not final; `renderers`: modules the
    caller needs afterwards, imported while the search waits on its commands."""
    from bot.sources.factory import build_sources, needs_ssh

    lang = lang or language("en")
    query = parse_query(text, now=now, zone=zone, tr=lang)
    pool = None
    if needs_ssh(settings):
        from bot.sources.ssh import SSHPool

        pool = SSHPool(settings)
        named = set(query.servers)
        pool.connect_early(
            s for s in settings.servers if not s.local and (not named or s.name in named)
        )
    try:
        await _import_meanwhile(SEARCH_MODULES)  # while the SSH handshakes go on
        from bot.search import run_search

        sources = build_sources(settings, pool)
        later = asyncio.ensure_future(_import_meanwhile(renderers))  # while the commands run
        try:
            result = await run_search(query, settings, sources, now=now, tr=lang)
        finally:
            await later
        if queue:
            from bot.live_queue import check_live_queues

            result = await check_live_queues(result, settings, sources)
        return result
    finally:
        if pool is not None:
            await pool.close()


# What a trace imports once its SSH connections are under way, in the order they import each
# other: one module at a time, with the event loop turning in between (see _import_meanwhile).
SEARCH_MODULES = (
    "bot.timings",
    "bot.sources.source",
    "parsers.explain",
    "parsers.builder",
    "parsers.trace",
    "parsers.joining",
    "parsers.journey",
    "parsers.queue",
    "bot.result",
    "bot.loghost",
    "bot.hops",
    "bot.nearmiss",
    "bot.diagnose",
    "bot.followup",
    "bot.search",
)


async def _import_meanwhile(modules: Sequence[str]) -> None:
    """Import `modules` one by one, letting the event loop run between them: an import holds
    the loop for a few milliseconds, while an SSH handshake or a grep waits far longer on the
    other side, so the two overlap instead of adding up."""
    for name in modules:
        await asyncio.sleep(0)
        __import__(name)  # as an import statement does (`-X importtime` lists it)


def run_trace(args: argparse.Namespace) -> int:
    _log_to_stderr(os.environ.get("MAILTRACE_LOG_LEVEL", ""))
    settings = load_config(args)
    zone = zone_named(args.tz) if args.tz else settings.zone
    lang = language(args.lang) if args.lang else language_from_env(os.environ)
    text = " ".join(args.query)
    renderer = "bot.render.jsonout" if args.format == "json" else "bot.render.text"
    answers: list[SearchResult] = []

    async def answer() -> None:
        # not returned: Python 3.11's asyncio.run formats its main task, result and all, when
        # it restores the Ctrl-C handler (a large answer's repr costs a fifth of a second)
        now = datetime.now(UTC)
        answers.append(
            await trace(settings, text, zone, now, lang, queue=args.queue, renderers=(renderer,))
        )

    asyncio.run(answer())
    [result] = answers
    if getattr(args, "log", None):
        from bot.diagnose import for_local_files

        result = for_local_files(result, lang)
    began = time.perf_counter()
    if args.format == "json":
        from bot.render.jsonout import render_json

        sys.stdout.write(render_json(result))
    else:
        from bot.render.text import render_text

        sys.stdout.write(render_text(result, zone, show_lines=args.lines, lang=lang))
    logging.getLogger(__name__).debug("render %.3f s", time.perf_counter() - began)
    if result.messages:
        return EXIT_FOUND
    if result.could_not_search:
        return EXIT_SERVERS
    return EXIT_NOTHING


def run_watch(args: argparse.Namespace) -> int:
    from bot.render.watch import done_lines, target_line
    from bot.sources.factory import build_sources, needs_ssh
    from bot.sources.queue_commands import check_queue_ids
    from bot.watch.follow import follow

    settings = load_config(args)
    lang = language(args.lang) if args.lang else language_from_env(os.environ)
    try:
        [queue_id] = check_queue_ids([args.queue_id])
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    settings.server(args.server)  # a ConfigError names an unknown server

    async def run() -> int:
        pool = None
        if needs_ssh(settings):
            from bot.sources.ssh import SSHPool

            pool = SSHPool(settings)
        try:
            sources = build_sources(settings, pool)
            followed = await follow(settings, sources, args.server, queue_id, args.timeout)
        finally:
            if pool is not None:
                await pool.close()
        if followed.done:
            sys.stdout.write("\n".join(done_lines(followed.targets, lang)) + "\n")
            delivered = all(t.status == "sent" for t in followed.targets)
            return EXIT_FOUND if delivered else EXIT_NOTHING
        head = lang.gettext("Still not final after {timeout:.0f} s:").format(timeout=args.timeout)
        lines = [head, *(target_line(t, lang) for t in followed.targets)]
        if followed.unreachable:
            lines.append(
                lang.gettext("The server could not be asked: {why}").format(
                    why=followed.unreachable
                )
            )
        sys.stdout.write("\n".join(lines) + "\n")
        return EXIT_PENDING

    return asyncio.run(run())


def _log_to_stderr(level: str) -> None:
    """With MAILTRACE_LOG_LEVEL=debug, the search's own log (e.g. where the time went) goes
    to stderr; libraries' logs stay off."""
    if level.upper() not in ("DEBUG", "INFO"):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("mailtrace: %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("bot")
    logger.addHandler(handler)
    logger.setLevel(level.upper())


def run_doctor(args: argparse.Namespace) -> int:
    from bot.doctor import check_servers, render_doctor

    settings = load_config(args)
    lang = language(args.lang) if args.lang else language_from_env(os.environ)
    rows = asyncio.run(check_servers(settings, lang=lang))
    sys.stdout.write(render_doctor(rows, lang=lang))
    return 0 if all(row.ok for row in rows) else EXIT_SERVERS


def run_serve(args: argparse.Namespace) -> int:
    from bot.slack.serve import serve

    settings = load_config(args)
    status: int = serve(settings)
    return status
