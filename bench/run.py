"""Benchmarks (not tests): mailtrace's search next to plain `LC_ALL=C grep -F` on the same log.

    python bench/run.py --size-mb 1024            # generates bench data once, then measures
    python bench/run.py --log /path/to/mail.log --needle a@b --date 2024-05-08

Reports the median of `--repeat` runs for: plain grep of the needle (the floor: what a person
does first), the hand procedure (grep the needle, then grep the queue IDs it found), mailtrace's
whole search (both passes, parsing, grouping) through the local source with its peak memory and
where its time went (the JSON's `timings`), and, with `--ssh-config FILE`, the same search
through SSH. Ratios are from the same run. Nothing here asserts a time; numbers go into the
issue notes. `make bench` runs it on a generated log of `BENCH_MB` megabytes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def timed(argv: list[str], repeat: int) -> tuple[float, str]:
    runs = []
    out = ""
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        runs.append(time.perf_counter() - start)
        out = done.stdout
        if done.returncode not in (0, 1):
            sys.exit(f"{argv[0]} failed ({done.returncode}): {done.stderr.strip()[:300]}")
    return statistics.median(runs), out


QUEUE_ID = re.compile(r"\]: ([0-9A-Za-z]{5,}): ")


def hand_procedure(log: Path, needle: str) -> float:
    """grep the needle, pick the queue IDs out of its lines, grep those: one person's two steps."""
    start = time.perf_counter()
    first = subprocess.run(
        ["env", "LC_ALL=C", "grep", "-F", "-e", needle, "--", str(log)],
        capture_output=True,
        text=True,
        check=False,
    )
    ids = sorted(set(QUEUE_ID.findall(first.stdout)))
    if ids:
        args = [a for qid in ids for a in ("-e", qid)]
        subprocess.run(
            ["env", "LC_ALL=C", "grep", "-F", *args, "--", str(log)],
            capture_output=True,
            check=False,
        )
    return time.perf_counter() - start


def peak_rss_mb(argv: list[str]) -> tuple[float, str]:
    """Run once; the child's peak resident memory (MB) and its stdout."""
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as proc:
        assert proc.stdout is not None
        out = proc.stdout.read()
        _pid, _status, usage = os.wait4(proc.pid, 0)
        proc.returncode = 0
    return usage.ru_maxrss / 1024, out.decode(errors="replace")


def breakdown(doc: dict[str, object]) -> str:
    """The JSON's timings as one line per server."""
    timings = doc.get("timings")
    if not isinstance(timings, dict):
        return "    (no timings in this version's JSON)"
    rows = ["    phases: " + ", ".join(f"{k} {v:.3f}" for k, v in timings["phases"].items())]
    for server in timings["servers"]:
        spent = ", ".join(f"{k} {v:.3f}" for k, v in server["phases"].items())
        rows.append(f"    {server['server']}: {spent}; {server['commands']} commands")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--log", type=Path, help="an existing log (default: generate one)")
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument(
        "--data", type=Path, default=Path(tempfile.gettempdir()) / "mailtrace-bench"
    )
    parser.add_argument("--needle", default="needle@example.net")
    parser.add_argument("--date", default="2024-05-08")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--ssh-config",
        type=Path,
        help="a mailtrace config whose server reads the same log over SSH",
    )
    args = parser.parse_args()

    log = args.log
    if log is None:
        log = args.data / f"mail-{args.size_mb}mb.log"
        if not log.exists():
            subprocess.run(
                [
                    sys.executable,
                    str(HERE / "generate_logs.py"),
                    "--out",
                    str(log),
                    "--size-mb",
                    str(args.size_mb),
                    "--needle",
                    args.needle,
                ],
                check=True,
            )
    size_mb = log.stat().st_size / 1e6
    mailtrace = str(Path(sys.executable).with_name("mailtrace"))
    print(
        f"log: {log} ({size_mb:.0f} MB), needle {args.needle}, date {args.date}, median of {args.repeat}"
    )

    grep_s, grep_out = timed(
        ["env", "LC_ALL=C", "grep", "-F", "-e", args.needle, "--", str(log)], args.repeat
    )
    print(
        f"  LC_ALL=C grep -F (pass 1 alone)   {grep_s:6.2f} s  {len(grep_out.splitlines())} lines"
    )
    hand = statistics.median(hand_procedure(log, args.needle) for _ in range(args.repeat))
    print(f"  hand procedure (needle, then IDs) {hand:6.2f} s")
    local = [mailtrace, "trace", args.needle, args.date, "--log", str(log), "--format", "json"]
    local_s, _out = timed(local, args.repeat)
    print(
        f"  mailtrace trace --log (local)     {local_s:6.2f} s  "
        f"({local_s / grep_s:.2f}x grep, {local_s / hand:.2f}x the hand procedure)"
    )
    rss, out = peak_rss_mb(local)
    print(f"    peak RSS {rss:.0f} MB")
    print(breakdown(json.loads(out)))
    if args.ssh_config:
        ssh_s, _ = timed(
            [
                mailtrace,
                "trace",
                args.needle,
                args.date,
                "--config",
                str(args.ssh_config),
                "--format",
                "json",
            ],
            args.repeat,
        )
        print(f"  mailtrace trace over SSH          {ssh_s:6.2f} s  ({ssh_s / grep_s:.1f}x grep)")
    startup_s, _ = timed([mailtrace, "--help"], args.repeat)
    print(f"  mailtrace --help (start-up cost)  {startup_s:6.2f} s")


if __name__ == "__main__":
    main()
