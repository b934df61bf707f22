"""Shell command lines that read a server's live queue: `postqueue` and `postconf`.

Strategy: the same rules as the grep commands (see `commands`): one `sh` script built only from
validated queue IDs and a configured Postfix configuration directory, every argument through
`shlex.quote`, wrapped in `timeout` under `LC_ALL=C`. Nothing a person typed reaches it except
queue IDs, which must be letters and digits.

`live_command` prints, in one round trip, the queue settings ("name = value" lines from
`postconf`), the `postqueue -j` objects that mention one of the queue IDs (grep -F; the caller
keeps exact matches only), and last "!postqueue-j STATUS": a status other than 0 means `-j` is
missing (Postfix < 3.1) or failed, and `text_queue_command` reads `postqueue -p` instead, keeping
only the paragraphs of those queue IDs (awk's paragraph mode: one message per paragraph) and
its status ("!postqueue-p STATUS"). A "postqueue: fatal: ..." line is its error, for the reader.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

from bot.sources.commands import wrap
from parsers.queue import QUEUE_ID, QUEUE_SETTINGS

JSON_STATUS_PREFIX = "!postqueue-j "
TEXT_STATUS_PREFIX = "!postqueue-p "
FATAL_PREFIX = "postqueue: fatal: "  # its stderr, e.g. "postqueue: fatal: Queue report unavailable"
MAX_QUEUE_IDS = 200
# A configuration directory: absolute, plain characters only (it is quoted anyway).
CONFIG_DIR = re.compile(r"^/[A-Za-z0-9_./-]*$")


def check_queue_ids(queue_ids: Sequence[str]) -> list[str]:
    """The queue IDs, de-duplicated; a ValueError for anything but letters and digits."""
    if not queue_ids:
        raise ValueError("at least one queue ID is needed")
    if len(queue_ids) > MAX_QUEUE_IDS:
        raise ValueError("too many queue IDs for one queue check")
    for queue_id in queue_ids:
        if not QUEUE_ID.match(queue_id):
            raise ValueError(f"not a queue ID: {queue_id!r}")
    return list(dict.fromkeys(queue_ids))


def check_config_dir(directory: str) -> str:
    if not CONFIG_DIR.match(directory) or "/../" in f"{directory}/":
        raise ValueError(f"postfix_config_dir {directory!r} must be a plain absolute path")
    return directory


def _config(config_dir: str | None) -> list[str]:
    return ["-c", check_config_dir(config_dir)] if config_dir else []


def live_command(queue_ids: Sequence[str], config_dir: str | None, timeout_s: float = 30) -> str:
    """postconf's queue settings, then the postqueue -j lines of these queue IDs and its status."""
    ids = check_queue_ids(queue_ids)
    conf = _config(config_dir)
    postconf = shlex.join(["postconf", *conf, *QUEUE_SETTINGS])
    postqueue = shlex.join(["postqueue", *conf, "-j"])
    needles = [*ids, JSON_STATUS_PREFIX, FATAL_PREFIX]
    patterns = " ".join(f"-e {shlex.quote(n)}" for n in needles)
    script = (
        f"{postconf} 2>/dev/null; "
        f'{{ {postqueue} 2>&1; echo "{JSON_STATUS_PREFIX}$?"; }} | grep -F {patterns}; '
        "exit 0"
    )
    return wrap(script, timeout_s)


def text_queue_command(
    queue_ids: Sequence[str], config_dir: str | None, timeout_s: float = 30
) -> str:
    """The postqueue -p paragraphs of these queue IDs (its header line kept for the reader)."""
    ids = check_queue_ids(queue_ids)
    postqueue = shlex.join(["postqueue", *_config(config_dir), "-p"])
    wanted = "|".join(ids)  # letters and digits only: safe inside the regular expression
    # One paragraph per message; the first one starts with the column header line.
    program = (
        'BEGIN { RS = "" } { sub(/^-Queue ID-[^\\n]*\\n/, "") } '
        f'$1 ~ /^({wanted})[*!]?$/ {{ print; print "" }} '
        f'$1 == "{TEXT_STATUS_PREFIX.strip()}" {{ print }}'
    )
    status = f'echo; echo "{TEXT_STATUS_PREFIX}$s"'
    script = f"{{ {postqueue} 2>/dev/null; s=$?; {status}; }} | awk {shlex.quote(program)}; exit 0"
    return wrap(script, timeout_s)
