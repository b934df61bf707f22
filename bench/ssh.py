"""Benchmark the search over real SSH (a local sshd from the test fixtures) on a big log.

    python bench/ssh.py --log /tmp/mailtrace-bench/mail-1024mb.log --needle needle@example.net --date 2024-05-08

Starts the same sshd the tests use (127.0.0.1 only), points a configuration at the log through
it, and reports mailtrace over SSH next to plain `LC_ALL=C grep -F` over the same file, run
through the same SSH connection setup (`ssh ... grep`), and locally.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.sshd import running_cluster  # noqa: E402  (the test fixtures' sshd, reused)


def median_time(argv: list[str], repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        runs.append(time.perf_counter() - start)
        if done.returncode not in (0, 1):
            sys.exit(f"failed ({done.returncode}): {' '.join(argv[:3])} ... {done.stderr[:300]}")
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--needle", default="needle@example.net")
    parser.add_argument("--date", default="2024-05-08")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    mailtrace = str(Path(sys.executable).with_name("mailtrace"))
    with running_cluster() as cluster:
        server = cluster.server_config("mx1", logs=(str(args.log),))
        config = cluster.root / "bench.yaml"
        config.write_text(
            json.dumps({"servers": [server.model_dump(mode="json", exclude_none=True)]})
        )
        sshd = cluster["mx1"]
        ssh = [
            "ssh",
            "-p",
            str(sshd.port),
            "-i",
            str(cluster.client_key.private),
            "-o",
            f"UserKnownHostsFile={cluster.known_hosts}",
            "-o",
            "BatchMode=yes",
            f"{cluster.login}@{sshd.host}",
        ]
        size = args.log.stat().st_size / 1e6
        print(f"log {args.log} ({size:.0f} MB), needle {args.needle}, median of {args.repeat}")
        grep_local = median_time(
            ["env", "LC_ALL=C", "grep", "-F", "-e", args.needle, "--", str(args.log)], args.repeat
        )
        print(f"  LC_ALL=C grep -F, local             {grep_local:6.2f} s")
        grep_ssh = median_time(
            [*ssh, f"LC_ALL=C grep -F -e {args.needle} -- {args.log}"], args.repeat
        )
        print(f"  ssh host LC_ALL=C grep -F           {grep_ssh:6.2f} s")
        trace = median_time(
            [
                mailtrace,
                "trace",
                args.needle,
                args.date,
                "--config",
                str(config),
                "--format",
                "json",
            ],
            args.repeat,
        )
        print(
            f"  mailtrace trace over SSH            {trace:6.2f} s  ({trace / grep_ssh:.1f}x ssh grep)"
        )


if __name__ == "__main__":
    main()
