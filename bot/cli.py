"""The `mailtrace` command line: a thin wrapper over the library.

    mailtrace trace QUERY...   what /mailtrace would answer, on a terminal or as JSON
    mailtrace doctor           check every configured server
    mailtrace serve            run the Slack bot

Exit statuses of `trace`: 0 found, 1 nothing found, 2 usage or configuration error,
3 nothing could be searched (every server failed, or no log file could be read).
Exit statuses of `watch`: 0 delivered, 1 bounced/expired/deleted (or otherwise not delivered),
2 usage or configuration error (or a queue ID the server does not know), 4 still pending when
the time limit ran out.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.errors import ConfigError, MailtraceError, UsageError
from bot.i18n import LANGUAGES, Language, language, language_from_env
from bot.query import parse_query, usage

# The search, its settings and renderers are imported by the command that runs them, so that
# `--help` and a usage error start in a fraction of the time.
if TYPE_CHECKING:
    from bot.result import SearchResult
    from bot.settings import Settings

DEMO_CONFIG = Path(__file__).resolve().parent.parent / "config" / "demo.yaml"
EXIT_FOUND, EXIT_NOTHING, EXIT_USAGE, EXIT_SERVERS = 0, 1, 2, 3
EXIT_PENDING = 4
DURATION = re.compile(r"^([0-9]{1,6})([smh])$")


YEAR_RANGE = (1970, 2200)  # ServerConfig.year's bounds


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr (and status 2), not usage + error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {printable(message)} (see {self.prog} --help)\n")


def printable(text: str) -> str:
    """`text` with its line breaks kept and any other control character shown escaped (an
    argument holding a \\r or \\x85 must not split or overwrite a line of the message)."""
    return "\n".join(
        "".join(c if c.isprintable() else repr(c)[1:-1] for c in line) for line in text.split("\n")
    )


def year_arg(text: str) -> int:
    """--year: a four-digit year in ServerConfig's range."""
    try:
        year = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a year like 2024, not {text!r}") from None
    low, high = YEAR_RANGE
    if not low <= year <= high:
        raise argparse.ArgumentTypeError(f"must be between {low} and {high}, not {year}")
    return year


def zone_arg(text: str) -> str:
    """--tz / --log-tz: an IANA zone this machine knows."""
    try:
        zone_named(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def duration_arg(text: str) -> float:
    """--timeout: a number and s, m or h."""
    match = DURATION.match(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"must be like 90s, 10m or 2h, not {text!r}")
    return float(int(match[1]) * {"s": 1, "m": 60, "h": 3600}[match[2]])


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's help with its one fixed word, "usage: ", in the reader's language (argparse
    looks its words up in its own gettext domain, for which no catalog is installed)."""

    usage_prefix = "usage: "

    def add_usage(self, usage: Any, actions: Any, groups: Any, prefix: str | None = None) -> None:
        super().add_usage(usage, actions, groups, self.usage_prefix if prefix is None else prefix)


def _formatter(lang: Language) -> type[argparse.HelpFormatter]:
    return type("_Formatter", (_HelpFormatter,), {"usage_prefix": lang.gettext("usage: ")})


def _sub_parser(sub: Any, name: str, lang: Language, **kwargs: Any) -> argparse.ArgumentParser:
    """A subcommand's parser with argparse's own words (help, section titles) in `lang`."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name, add_help=False, formatter_class=_formatter(lang), **kwargs
    )
    _own_words(parser, lang)
    return parser


def _own_words(parser: argparse.ArgumentParser, lang: Language) -> None:
    _ = lang.gettext
    parser._positionals.title = _("positional arguments")
    parser._optionals.title = _("options")
    parser.add_argument("-h", "--help", action="help", help=_("show this help message and exit"))


def lang_in(argv: Sequence[str]) -> str | None:
    """The --lang a command line gives (read before argparse, so that --help is in it)."""
    for index, arg in enumerate(argv):
        if arg == "--lang" and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith("--lang="):
            return arg.partition("=")[2]
    return None


def build_parser(lang: Language | None = None) -> argparse.ArgumentParser:
    """The argument parser, its help in `lang` (the terminal's, or --lang's: see `main`)."""
    lang = lang or language_from_env(os.environ)
    _ = lang.gettext
    parser = _Parser(
        prog="mailtrace",
        description=_("Tell what happened to an email, from Postfix logs (local or over SSH)."),
        add_help=False,
        formatter_class=_formatter(lang),
    )
    _own_words(parser, lang)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    trace = _sub_parser(
        sub,
        "trace",
        lang,
        help=_("trace a message, as /mailtrace would"),
        description=_("Trace a message. QUERY is what you would type after /mailtrace.")
        + "\n\n"
        + usage(lang),
        epilog=_(
            "Without --log or --config, the configuration in $MAILTRACE_CONFIG is used, else "
            "the bundled demo (real Postfix logs). Exit status: 0 found, 1 nothing found, "
            "2 usage or configuration error, 3 nothing could be searched."
        ),
    )
    trace.add_argument("query", nargs="+", help=_("e.g. sender2@example.net 2024-05-13 10:00"))
    trace.add_argument(
        "--log",
        action="append",
        metavar="PATH",
        help=_("search these local files (repeatable; globs and .gz/.bz2/.xz/.zst allowed)"),
    )
    trace.add_argument("--config", metavar="FILE", help=_("YAML configuration (servers, limits)"))
    trace.add_argument("--format", choices=("text", "json"), default="text")
    trace.add_argument(
        "--tz",
        metavar="ZONE",
        type=zone_arg,
        help=_("your time zone for dates and times (default: the config's)"),
    )
    trace.add_argument(
        "--log-tz",
        metavar="ZONE",
        type=zone_arg,
        default="UTC",
        help=_("zone of the --log files' lines (UTC)"),
    )
    trace.add_argument(
        "--year",
        type=year_arg,
        help=_("year the --log files were last written, for yearless lines (default: their mtime)"),
    )
    trace.add_argument(
        "--central",
        action="store_true",
        help=_("the --log files come from a central log host: name each line by its syslog host"),
    )
    trace.add_argument("--lines", action="store_true", help=_("show each message's raw log lines"))
    _lang_option(trace, lang)
    trace.add_argument(
        "--queue",
        action="store_true",
        help=_(
            "for mail that is not final, also ask the server's live queue (postqueue, postconf)"
        ),
    )

    watch = _sub_parser(
        sub,
        "watch",
        lang,
        help=_("wait until a queued mail is delivered, bounced, expired or deleted"),
        epilog=_(
            "Exit status: 0 delivered, 1 bounced/expired/deleted, 2 usage or configuration "
            "error, 4 still pending when the time limit ran out."
        ),
    )
    watch.add_argument("queue_id", metavar="QUEUE_ID")
    watch.add_argument("--server", required=True, metavar="NAME", help=_("the configured server"))
    watch.add_argument("--config", metavar="FILE", help=_("YAML configuration (servers, limits)"))
    watch.add_argument(
        "--timeout",
        type=duration_arg,
        default=600.0,
        metavar="DURATION",
        help=_("how long to wait: 90s, 10m, 2h"),
    )
    _lang_option(watch, lang)

    doctor = _sub_parser(
        sub, "doctor", lang, help=_("check every configured server and its log files")
    )
    doctor.add_argument("--config", metavar="FILE", help=_("YAML configuration (servers, limits)"))
    _lang_option(doctor, lang)

    serve = _sub_parser(sub, "serve", lang, help=_("run the Slack bot (Socket Mode or HTTP)"))
    serve.add_argument("--config", metavar="FILE", help=_("YAML configuration (servers, limits)"))
    return parser


def _lang_option(parser: argparse.ArgumentParser, lang: Language) -> None:
    parser.add_argument(
        "--lang",
        choices=LANGUAGES,
        help=lang.gettext(
            "language of the answer (default: from LANGUAGE, LC_ALL, LC_MESSAGES or LANG)"
        ),
    )


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


def zone_named(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise UsageError(f"unknown time zone {name!r} (try Europe/Berlin or UTC)") from exc


async def trace(
    settings: Settings,
    text: str,
    zone: ZoneInfo,
    now: datetime,
    lang: Language | None = None,
    *,
    queue: bool = False,
) -> SearchResult:
    """Run one query against the configured servers (the library call behind the CLI);
    `queue`: then ask the live queue about mail that is not final."""
    from bot.live_queue import check_live_queues
    from bot.search import run_search
    from bot.sources.factory import build_sources, needs_ssh

    lang = lang or language("en")
    query = parse_query(text, now=now, zone=zone, tr=lang)
    pool = None
    if needs_ssh(settings):
        from bot.sources.ssh import SSHPool

        pool = SSHPool(settings)
    sources = build_sources(settings, pool)
    try:
        result = await run_search(query, settings, sources, now=now, tr=lang)
        if queue:
            result = await check_live_queues(result, settings, sources)
        return result
    finally:
        if pool is not None:
            await pool.close()


def run_trace(args: argparse.Namespace) -> int:
    _log_to_stderr(os.environ.get("MAILTRACE_LOG_LEVEL", ""))
    settings = load_config(args)
    zone = zone_named(args.tz) if args.tz else settings.zone
    lang = language(args.lang) if args.lang else language_from_env(os.environ)
    text = " ".join(args.query)
    result = asyncio.run(trace(settings, text, zone, datetime.now(UTC), lang, queue=args.queue))
    if getattr(args, "log", None):
        from bot.diagnose import for_local_files

        result = for_local_files(result, lang)
    if args.format == "json":
        from bot.render.jsonout import render_json

        sys.stdout.write(render_json(result))
    else:
        from bot.render.text import render_text

        sys.stdout.write(render_text(result, zone, show_lines=args.lines, lang=lang))
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


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    chosen = lang_in(argv)
    parser = build_parser(language(chosen) if chosen in LANGUAGES else None)
    args = parser.parse_args(argv)
    handlers = {"trace": run_trace, "watch": run_watch, "doctor": run_doctor, "serve": run_serve}
    try:
        return handlers[args.command](args)
    except UsageError as exc:
        sys.stderr.write(f"mailtrace: {printable(str(exc))}\n")
        return EXIT_USAGE
    except ConfigError as exc:
        sys.stderr.write(f"mailtrace: configuration error: {printable(str(exc))}\n")
        return EXIT_USAGE
    except MailtraceError as exc:
        sys.stderr.write(f"mailtrace: {printable(str(exc))}\n")
        return EXIT_SERVERS
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
