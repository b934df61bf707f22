"""The `mailtrace` command line's grammar: the argument parser, its help in the reader's
language, and the checks of each option's value.

Strategy: argparse, with its own few words (usage, help, section titles) put into the reader's
language (--lang, read before parsing, else the terminal's), and a bad argument told in one line
(status 2) rather than argparse's usage block. Only the query grammar is imported here, so that
`--help` and a usage error start in a fraction of the time.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from bot.cli.exits import EXIT_USAGE, printable
from bot.errors import UsageError
from bot.i18n import LANGUAGES, Language, language_from_env
from bot.usage import usage

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

DURATION = re.compile(r"^([0-9]{1,6})([smh])$")
YEAR_RANGE = (1970, 2200)  # ServerConfig.year's bounds


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr (and status 2), not usage + error."""

    def error(self, message: str) -> NoReturn:
        self.exit(
            EXIT_USAGE,
            f"{self.prog}: {printable(message, keep_lines=False)} (see {self.prog} --help)\n",
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


def zone_named(name: str) -> ZoneInfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise UsageError(f"unknown time zone {name!r} (try Europe/Berlin or UTC)") from exc
