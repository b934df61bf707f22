"""The benchmark's data, generated once and kept in the temp directory (reused while the
generator's options stay the same: the file names carry them).

- the big log: `mb` megabytes over a week (2024-05-06 to 2024-05-12), a needle address a few
  times, and one message in ten from a busy domain (`broad.example.com`);
- the retention set: 30 daily files (today's plain `mail.log`, then `mail.log.1.gz` ...
  `mail.log.29.gz`), May 2024, `day_mb` megabytes a day, the needle each day; on the asked day
  (the 15th) the needle's message is still deferred at its last line;
- small logs: the test fixtures' four rotated days of a few dozen messages per server.
"""

from __future__ import annotations

import gzip
import os
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.generate_logs import generate
from tests.sshd import write_rotated_logs

NEEDLE = "needle@example.net"
BROAD = "broad.example.com"
BIG_START = datetime(2024, 5, 6, tzinfo=UTC)
BIG_DAY = "2024-05-08"  # a day of the big log, for one-address and @domain questions
MONTH_START = datetime(2024, 5, 1, tzinfo=UTC)
RETENTION_DAYS = 30
ASKED_DAY = 15  # of May 2024: mail.log.15.gz
QUEUE_LIFETIME_DAYS = 5  # Postfix's default maximal_queue_lifetime


def _readable(path: Path) -> Path:
    """The service account reads the data over SSH: world-readable files and directories."""
    path.chmod(0o755 if path.is_dir() else 0o644)
    return path


def big_log(data: Path, mb: float) -> Path:
    data.mkdir(parents=True, exist_ok=True)
    _readable(data)
    path = data / f"week-{mb:g}mb-broad10.log"
    if not path.exists():
        print(f"(generating {path}, once)", flush=True)
        partial = path.with_suffix(".partial")
        generate(partial, mb, NEEDLE, BIG_START, 7, 1, broad_domain=BROAD, broad_every=10)
        partial.rename(path)
    return _readable(path)


def retention_file(directory: Path, age: int) -> Path:
    """The file holding day `RETENTION_DAYS - age` of May 2024 (age 0: today's plain file)."""
    return directory / ("mail.log" if age == 0 else f"mail.log.{age}.gz")


def retention_set(data: Path, day_mb: float) -> Path:
    """A directory of 30 daily files; returns the directory."""
    directory = data / f"retention-{day_mb:g}mb"
    done = directory / ".complete"
    if done.exists():
        return directory
    print(f"(generating {RETENTION_DAYS} days in {directory}, once)", flush=True)
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    _readable(directory)
    for age in range(RETENTION_DAYS):
        day = MONTH_START + timedelta(days=RETENTION_DAYS - 1 - age)
        plain = directory / f"day-{age}.log"
        generate(plain, day_mb, NEEDLE, day, 1, 100 + age, deferred_needle=day.day == ASKED_DAY)
        target = retention_file(directory, age)
        if age:
            with plain.open("rb") as src, gzip.open(target, "wb", compresslevel=6) as dst:
                shutil.copyfileobj(src, dst)
            plain.unlink()
        else:
            plain.rename(target)
        end = (day + timedelta(hours=23, minutes=59)).timestamp()
        os.utime(_readable(target), (end, end))
    done.touch()
    return directory


def relevant_files(directory: Path) -> list[Path]:
    """What a person would read for the asked day: that day and the queue lifetime after it."""
    first_age = RETENTION_DAYS - ASKED_DAY
    ages = range(first_age, first_age - QUEUE_LIFETIME_DAYS - 1, -1)
    return [retention_file(directory, age) for age in ages]


def small_logs(data: Path, servers: int) -> list[Path]:
    """Four rotated days of small logs per server (rewritten each run: they end yesterday)."""
    directories = []
    for i in range(servers):
        directory = data / "small" / f"mx{i + 1}"
        shutil.rmtree(directory, ignore_errors=True)
        write_rotated_logs(directory, f"mx{i + 1}")
        for path in [data / "small", directory, *directory.iterdir()]:
            _readable(path)
        directories.append(directory)
    return directories
