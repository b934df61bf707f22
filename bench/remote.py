"""Scenarios over real SSH (local sshds, the service account): (1) the big log through the CLI
and through a warm pool, (0) the bot's small-log case, one question and fifty at once,
(3) eight servers at once against one."""

from __future__ import annotations

import json
import shlex
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import data
from bench.common import (
    HERE,
    MAILTRACE,
    PYTHON,
    answer_size,
    breakdown,
    breakdown_text,
    heading,
    median_run,
    ratio,
    row,
    run,
)
from bench.server import Remote


def warm(config: Path, query: str, floor: str, repeat: int, concurrent: int = 0) -> dict[str, Any]:
    """The in-process warm-pool measurement (bench/inproc.py), with its peak memory."""
    argv = [PYTHON, str(HERE / "inproc.py"), "warm", "--config", str(config), "--query", query]
    argv += ["--floor", floor, "--repeat", str(repeat), "--concurrent", str(concurrent)]
    done = run(argv)
    got: dict[str, Any] = json.loads(done.out)
    got["peak_mb"] = done.peak_mb
    return got


def _show_timings(got: dict[str, Any]) -> None:
    if got.get("timings"):
        print(breakdown_text(got["timings"]))


def one_address_ssh(remote: Remote, log: Path, repeat: int) -> None:
    remote.ensure_login()
    heading(f"(1) one address in a big log over SSH (login {remote.login}): {log.name}")
    grep_command = f"LC_ALL=C grep -F -e {shlex.quote(data.NEEDLE)} -- {shlex.quote(str(log))}"
    grep = median_run([*remote.ssh(), grep_command], repeat)
    row(
        "ssh host LC_ALL=C grep -F (the floor)", grep.seconds, f"{len(grep.out.splitlines())} lines"
    )
    config = remote.config("big", [remote.server("mx1", 0, [str(log)])])
    argv = [MAILTRACE, "trace", data.NEEDLE, data.BIG_DAY, "--config", str(config)]
    mine = median_run([*argv, "--format", "json"], repeat)
    row("mailtrace trace --config (CLI, cold)", mine.seconds, answer_size(mine.out), mine.peak_mb)
    ratio("vs ssh host grep", mine.seconds, grep.seconds, "ssh grep", "<= 1.3")
    breakdown(mine.out, mine.seconds)
    got = warm(config, f"{data.NEEDLE} {data.BIG_DAY}", grep_command, repeat)
    row("remote grep over the warm connection", got["floor_s"])
    row(
        "run_search, warm pool (the bot's case)",
        got["warm_s"],
        f"{got['messages']} messages",
        got["peak_mb"],
    )
    ratio("vs the remote grep itself", got["warm_s"], got["floor_s"], "grep", "<= 1.1")
    _show_timings(got)


def _yesterday() -> str:
    return (datetime.now(UTC) - timedelta(days=1)).date().isoformat()


def small_logs(remote: Remote, logs: list[Path], repeat: int, concurrent: int) -> None:
    remote.ensure_login()
    heading(f"(0) the bot's case: small logs on two servers (login {remote.login}), warm pool")
    servers = [
        remote.server(f"mx{i + 1}", i, [str(d) + "/mail.log*"]) for i, d in enumerate(logs[:2])
    ]
    config = remote.config("small", servers)
    got = warm(config, f"sender3@example.net {_yesterday()}", "true", repeat * 3, concurrent)
    row("one `true` over the warm connection", got["floor_s"])
    row("first question (connect, list, date files)", got["first_s"])
    row("warm answer (run_search)", got["warm_s"], f"{got['messages']} messages", got["peak_mb"])
    print(f"  {'= warm answer':<44} {got['warm_s'] * 1000:8.0f} ms   (target <= 150 ms)")
    ratio("vs one `true`", got["warm_s"], got["floor_s"], "true")
    _show_timings(got)
    at_once = got["concurrent"]
    note = f"p50 {at_once['p50_s']:.3f} s, p95 {at_once['p95_s']:.3f} s"
    row(f"{at_once['n']} questions at once, one warm pool", at_once["total_s"], note)
    print(
        f"  {'= ' + str(at_once['n']) + ' at once, all answered':<44} {at_once['total_s']:8.2f} s"
        "   (target: a few seconds)"
    )


def eight_servers(remote: Remote, logs: list[Path], repeat: int) -> None:
    remote.ensure_login()
    n = len(remote.sshds)
    heading(f"(3) {n} servers at once against one (small logs, {n} sshds, login {remote.login})")
    query = f"sender3@example.net {_yesterday()}"
    entries = [remote.server(f"mx{i + 1}", i, [str(d) + "/mail.log*"]) for i, d in enumerate(logs)]
    one, many = remote.config("one", entries[:1]), remote.config("many", entries)
    results = {}
    for name, config in (("1 server", one), (f"{n} servers", many)):
        cli = median_run(
            [MAILTRACE, "trace", *query.split(), "--config", str(config), "--format", "json"],
            repeat,
        )
        row(f"CLI, cold, {name}", cli.seconds, answer_size(cli.out), cli.peak_mb)
        got = warm(config, query, "true", repeat * 3)
        row(f"warm pool, {name}", got["warm_s"], f"{got['messages']} messages", got["peak_mb"])
        results[name] = (cli, got)
    (cli1, warm1), (clin, warmn) = results["1 server"], results[f"{n} servers"]
    ratio(f"CLI: {n} vs 1", clin.seconds, cli1.seconds, "one", "<= 1.5")
    ratio(f"warm pool: {n} vs 1", warmn["warm_s"], warm1["warm_s"], "one", "<= 1.5")
    breakdown(clin.out, clin.seconds)
    _show_timings(warmn)
