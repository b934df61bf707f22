"""Benchmarks (not tests): mailtrace's search next to plain `LC_ALL=C grep -F` on the same log.

    python bench/run.py --size-mb 1024            # generates bench data once, then measures
    python bench/run.py --log /path/to/mail.log --needle a@b --date 2024-05-08

Reports the median of `--repeat` runs for: plain grep of the needle (what a person does first),
mailtrace's whole search (both passes, parsing, grouping) through the local source, and, with
`--ssh-config FILE`, the same search through SSH. Nothing here asserts a time; numbers go into
the issue notes.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--log", type=Path, help="an existing log (default: generate one)")
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--data", type=Path, default=Path("/tmp/mailtrace-bench"))
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
    local_s, _out = timed(
        [mailtrace, "trace", args.needle, args.date, "--log", str(log), "--format", "json"],
        args.repeat,
    )
    print(f"  mailtrace trace --log (local)     {local_s:6.2f} s  ({local_s / grep_s:.1f}x grep)")
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
