"""`make bench`: mailtrace next to its floor and the hand procedure, scenario by scenario, as
ratios from the same run, with peak memory (not a test: nothing here asserts a time).

    python bench/run.py                       # the default sizes: 2-3 minutes on 2 cores (1 once data is made)
    python bench/run.py --mb 1024 --day-mb 30 # the issue's sizes (make bench BENCH_MB=1024 BENCH_DAY_MB=30)
    python bench/run.py --only 0 3            # some scenarios

Generates its data once into the temp directory (see bench/data.py), starts local sshds itself
(127.0.0.1, the fixtures' helpers) and logs in as the service account `mailtrace-test`.
Scenarios and targets (issue 12):
  (0) the bot's small-log case over SSH, warm: one answer <= 150 ms; 50 at once in seconds
  (1) one address in a big log: local <= 0.8 x the hand procedure; over SSH <= 1.3 x one
      `ssh host LC_ALL=C grep -F`; warm pool <= 1.1 x the remote grep itself
  (2) 30-day retention, one day, a message still deferred: <= 1.2 x the relevant files
  (3) eight servers at once <= 1.5 x one
  (4) a broad @domain day: <= 1.5 x `LC_ALL=C grep -F -i` of the domain
  (5) parse + group >= 4 x pflogsumm's lines per second
  (6) a query reading about a million lines: peak RSS < 200 MB
Where the time goes comes from the answers' JSON `timings` (printed under each row).
"""

from __future__ import annotations

import argparse
import compileall
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import data, local, remote
from bench.server import local_sshds

SCENARIOS = ("0", "1", "2", "3", "4", "5", "6")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mb", type=float, default=128, help="size of the big log (MB)")
    parser.add_argument(
        "--rss-mb", type=float, default=512, help="log of scenario 6 (MB; 512: ~1M lines match)"
    )
    parser.add_argument("--day-mb", type=float, default=4, help="size of a retention day (MB)")
    parser.add_argument("--sample-mb", type=float, default=16, help="throughput sample (MB)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing (median)")
    parser.add_argument("--servers", type=int, default=8, help="servers of scenario 3")
    parser.add_argument("--concurrent", type=int, default=50, help="questions at once (0)")
    parser.add_argument(
        "--data", type=Path, default=Path(tempfile.gettempdir()) / "mailtrace-bench"
    )
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, default=SCENARIOS)
    args = parser.parse_args()
    began = time.perf_counter()
    # As installed (pip compiles a wheel's modules), mailtrace starts from bytecode: an editable
    # checkout under PYTHONDONTWRITEBYTECODE would compile every module again on every run.
    root = Path(__file__).resolve().parent.parent
    for package in ("bot", "parsers"):
        compileall.compile_dir(root / package, quiet=1)
    print(
        f"mailtrace bench: {platform.node()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; median of {args.repeat}; data in {args.data}"
    )
    only = set(args.only)
    log = data.big_log(args.data, args.mb)
    if "1" in only:
        local.one_address(log, args.repeat)
    if only & {"0", "1", "3"}:
        servers = args.servers if "3" in only else 2
        smalls = data.small_logs(args.data, max(servers, 2))
        with local_sshds(max(servers, 2)) as sshds:
            if "1" in only:
                remote.one_address_ssh(sshds, log, args.repeat)
            if "0" in only:
                remote.small_logs(sshds, smalls, args.repeat, args.concurrent)
            if "3" in only:
                remote.eight_servers(sshds, smalls[:servers], args.repeat)
    if "2" in only:
        local.retention(data.retention_set(args.data, args.day_mb), args.repeat)
    if "4" in only:
        local.broad_domain(log, args.repeat)
    if "5" in only:
        local.throughput(log, args.sample_mb)
    if "6" in only:
        local.million_lines(data.big_log(args.data, args.rss_mb), args.data)
    print(f"\nbench done in {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
