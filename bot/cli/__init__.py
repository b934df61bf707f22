"""The `mailtrace` command line: a thin wrapper over the library.

    mailtrace trace QUERY...   what /mailtrace would answer, on a terminal or as JSON
    mailtrace watch QUEUE_ID   wait until a queued mail is delivered, bounced or gone
    mailtrace doctor           check every configured server
    mailtrace serve            run the Slack bot

Exit statuses of `trace`: 0 found, 1 nothing found, 2 usage or configuration error,
3 nothing could be searched (every server failed, or no log file could be read).
Exit statuses of `watch`: 0 delivered, 1 bounced/expired/deleted (or otherwise not delivered),
2 usage or configuration error (or a queue ID the server does not know), 4 still pending when
the time limit ran out.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from bot.cli.arguments import build_parser, lang_in
from bot.cli.exits import EXIT_INTERRUPTED, EXIT_SERVERS, EXIT_USAGE, printable
from bot.errors import ConfigError, MailtraceError, UsageError
from bot.i18n import LANGUAGES, language

# The commands `main` ran (in this process): `run` ends quickly only after a one-shot one.
_ran: list[str] = []
QUICK_EXIT = frozenset({"trace", "doctor"})


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    chosen = lang_in(argv)
    parser = build_parser(language(chosen) if chosen in LANGUAGES else None)
    args = parser.parse_args(argv)
    _ran.append(args.command)
    # Imported once the arguments are good: `--help` and a usage error need none of it.
    from bot.cli.commands import run_doctor, run_serve, run_trace, run_watch

    handlers = {"trace": run_trace, "watch": run_watch, "doctor": run_doctor, "serve": run_serve}
    try:
        return handlers[args.command](args)
    except UsageError as exc:
        sys.stderr.write(f"mailtrace: {printable(str(exc))}\n")
        return EXIT_USAGE
    except ConfigError as exc:
        sys.stderr.write(
            f"mailtrace: configuration error: {printable(str(exc), keep_lines=False)}\n"
        )
        return EXIT_USAGE
    except MailtraceError as exc:
        sys.stderr.write(f"mailtrace: {printable(str(exc))}\n")
        return EXIT_SERVERS
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def run() -> NoReturn:
    """The `mailtrace` console script (and `python -m bot.cli`): `main`, then a quick exit.

    Once the answer is written nothing is left to do, yet the interpreter's teardown (freeing
    every module: pydantic's schemas, asyncssh's crypto) takes tens of milliseconds, as long as
    a whole local search. So stdout, stderr and logging are flushed and the process ends
    without it: after `trace` and `doctor` only. `serve` and `watch` (long-running, with their
    own shutdown and stores) exit the ordinary way, as does anything argparse ends (`--help`,
    a bad argument), which has little to tear down.
    """
    status = main()
    if not _ran or _ran[-1] not in QUICK_EXIT:  # serve and watch end the ordinary way
        raise SystemExit(status)
    logging.shutdown()
    try:
        sys.stdout.flush()
    except OSError:  # the reader went away (`| head`): what Python's own exit reports
        status = 120
    try:
        sys.stderr.flush()
    finally:
        os._exit(status)
