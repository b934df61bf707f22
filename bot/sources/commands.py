"""Shell command lines that run where the logs are (over SSH, or locally for the demo): the
frame every one runs in, and the faster tools a server has.

Strategy: every command is one POSIX `sh` script assembled in `bot.sources` and nowhere else
(`listing_commands`, `grep_commands`, `queue_commands`, `riding`), only from validated values and
configured paths, each through `shlex.quote`; patterns are fixed strings after `-e` and paths
come after `--`. `wrap` bounds the script in `timeout` so that nothing outlives a cancelled
query, and runs it under `LC_ALL=C` (bytes in, bytes out; much faster than UTF-8). The same
text runs on a server through SSH and locally through `/bin/sh -c`, so what the tests check is
what runs everywhere. `PROBE`, sent with a listing, says which faster tools the commands may use.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass


@dataclass(frozen=True)
class Tools:
    """The faster tools a server has (`PROBE`): ripgrep for plain files, pigz for .gz, zstd for
    .zst. Without them: `LC_ALL=C grep -F` and the standard decompressors, same output. And
    awk, which pass 2 needs to ride in pass 1's command (`riding`): assumed until a probe
    finds none."""

    rg: bool = False
    pigz: bool = False
    zstd: bool = False
    awk: bool = True


NO_TOOLS = Tools()
TOOLS_PREFIX = "T\t"
# A fixed script, no user text: "T" and a tab-separated name per tool found on the PATH.
PROBE = (
    "printf T; for t in rg pigz zstd awk; do "
    'command -v "$t" >/dev/null 2>&1 && printf \'\\t%s\' "$t"; done; echo'
)


def parse_tools(line: str) -> Tools:
    """PROBE's line ("T<TAB>rg<TAB>pigz...") as Tools."""
    found = set(line.split("\t")[1:])
    return Tools(rg="rg" in found, pigz="pigz" in found, zstd="zstd" in found, awk="awk" in found)


def wrap(script: str, timeout_s: float) -> str:
    """The whole script, bounded in time: `timeout` kills it even if the client went away."""
    seconds = max(1, int(timeout_s))
    # `exec`: the login shell becomes `timeout`, so the TERM that sshd delivers for a cancelled
    # query reaches it, and `timeout` passes it on to its whole process group.
    return f"exec env LC_ALL=C timeout -k 5 {seconds} sh -c {shlex.quote(script)}"
