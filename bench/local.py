"""Scenarios on this machine's files: (1) one address in the big log, (2) 30-day retention,
(4) a broad @domain day, (5) parse + group throughput against pflogsumm, (6) peak memory of a
query that reads about a million lines."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

from bench import data
from bench.common import (
    GREP,
    HERE,
    MAILTRACE,
    PYTHON,
    answer_size,
    breakdown,
    heading,
    median,
    median_run,
    ratio,
    row,
    run,
)

QUEUE_ID = re.compile(r"\]: ([0-9A-Za-z]{5,}): ")


def decompressor() -> list[str]:
    """What the product picks for .gz when present: pigz, else gzip."""
    return ["pigz", "-dc"] if shutil.which("pigz") else ["gzip", "-dc"]


def _grep_files(needles: list[str], files: list[Path], ignore_case: bool = False) -> str:
    """LC_ALL=C grep -F over plain files and .gz alike (one pipeline per compressed file)."""
    args = [a for n in needles for a in ("-e", n)]
    flags = ["-i"] if ignore_case else []
    out = []
    plain = [str(f) for f in files if f.suffix != ".gz"]
    if plain:
        out.append(run([*GREP, *flags, "-h", *args, "--", *plain]).out)
    packed = [str(f) for f in files if f.suffix == ".gz"]
    if packed:
        pipeline = (
            " ".join([*decompressor(), *packed])
            + " | LC_ALL=C grep -F "
            + " ".join([*flags, *(f"'{a}'" if a != "-e" else a for a in args)])
        )
        out.append(run(["sh", "-c", pipeline]).out)
    return "".join(out)


def hand_procedure(needle: str, files: list[Path], later: list[Path] | None = None) -> float:
    """A person's two steps: grep the needle, then grep the queue IDs it found (in `later`,
    default the same files)."""
    started = time.perf_counter()
    first = _grep_files([needle], files)
    ids = sorted(set(QUEUE_ID.findall(first)))
    if ids:
        _grep_files(ids, later or files)
    return time.perf_counter() - started


def one_address(log: Path, repeat: int) -> None:
    heading(f"(1) one address in a big log, local: {log.name} ({log.stat().st_size / 1e6:.0f} MB)")
    grep = median_run([*GREP, "-e", data.NEEDLE, "--", str(log)], repeat)
    row("LC_ALL=C grep -F (the floor)", grep.seconds, f"{len(grep.out.splitlines())} lines")
    hand = median([hand_procedure(data.NEEDLE, [log]) for _ in range(repeat)])
    row("hand procedure (needle, then its queue IDs)", hand)
    argv = [MAILTRACE, "trace", data.NEEDLE, data.BIG_DAY, "--log", str(log), "--format", "json"]
    mine = median_run(argv, repeat)
    row("mailtrace trace --log", mine.seconds, answer_size(mine.out), mine.peak_mb)
    ratio("vs the hand procedure", mine.seconds, hand, "hand", "<= 0.8")
    ratio("vs grep -F", mine.seconds, grep.seconds, "grep")
    breakdown(mine.out, mine.seconds)
    startup = median_run([MAILTRACE, "--help"], repeat)
    row("mailtrace --help (start-up alone)", startup.seconds, "", startup.peak_mb)


def retention(directory: Path, repeat: int) -> None:
    day = f"2024-05-{data.ASKED_DAY:02d}"
    files = sorted(directory.glob("mail.log*"))
    relevant = data.relevant_files(directory)
    total = sum(f.stat().st_size for f in files) / 1e6
    heading(
        f"(2) 30-day retention ({len(files)} files, {total:.0f} MB on disk), one day ({day}), "
        "its needle message still deferred at its last line"
    )
    names = ", ".join(f.name for f in relevant)
    floor = median([_timed_grep(relevant) for _ in range(repeat)])
    row("grep -F of the relevant files", floor, f"({names})")
    hand = median([hand_procedure(data.NEEDLE, relevant[:1], relevant) for _ in range(repeat)])
    row("hand procedure over them (needle, then IDs)", hand)
    glob = str(directory / "mail.log*")
    mine = median_run(
        [MAILTRACE, "trace", data.NEEDLE, day, "--log", glob, "--format", "json"], repeat
    )
    row("mailtrace trace --log 'mail.log*'", mine.seconds, answer_size(mine.out), mine.peak_mb)
    ratio("vs grep -F of the relevant files", mine.seconds, floor, "grep", "<= 1.2")
    ratio("vs the hand procedure over them", mine.seconds, hand, "hand")
    breakdown(mine.out, mine.seconds)
    _files_read(mine.out)


def _timed_grep(files: list[Path]) -> float:
    started = time.perf_counter()
    _grep_files([data.NEEDLE], files)
    return time.perf_counter() - started


def _files_read(json_text: str) -> None:
    """Which files the answer says it searched."""
    try:
        coverage = json.loads(json_text).get("searched", [])
    except json.JSONDecodeError:
        return
    files = [f for c in coverage for f in c.get("files", [])]
    paths = [Path(f["path"]).name for f in files if f.get("searched")]
    print(f"    files searched: {len(paths)} of {len(files)}: {', '.join(paths)}")


def broad_domain(log: Path, repeat: int) -> None:
    target = "@" + data.BROAD
    heading(f"(4) a broad {target} day ({data.BIG_DAY}) in {log.name}")
    grep = median_run([*GREP, "-i", "-e", target, "--", str(log)], repeat)
    row("LC_ALL=C grep -F -i of the domain", grep.seconds, f"{len(grep.out.splitlines())} lines")
    argv = [MAILTRACE, "trace", target, data.BIG_DAY, "--log", str(log), "--format", "json"]
    mine = median_run(argv, repeat)
    row("mailtrace trace --log", mine.seconds, answer_size(mine.out), mine.peak_mb)
    ratio("vs grep -F -i", mine.seconds, grep.seconds, "grep", "<= 1.5")
    breakdown(mine.out, mine.seconds)


def throughput(log: Path, mb: float) -> None:
    sample = log.with_name(f"{log.stem}-first{mb:g}mb.log")
    if not sample.exists():
        with log.open("rb") as src:
            chunk = src.read(int(mb * 1024 * 1024))
        sample.write_bytes(chunk[: chunk.rfind(b"\n") + 1])
    heading(f"(5) parse + group throughput on {sample.name} ({sample.stat().st_size / 1e6:.0f} MB)")
    mine = run([PYTHON, str(HERE / "inproc.py"), "throughput", "--file", str(sample)])
    got = json.loads(mine.out)
    spent = got["parse_s"] + got["group_s"]
    mine_rate = got["lines"] / spent
    row(
        "mailtrace parse_line + group_messages",
        spent,
        f"{mine_rate:,.0f} lines/s (parse {got['parse_s']:.2f} s, group {got['group_s']:.2f} s, "
        f"{got['messages']} messages)",
        mine.peak_mb,
    )
    if shutil.which("pflogsumm") is None:
        print("  pflogsumm: not installed (Debian package pflogsumm): row skipped")
        return
    theirs = run(["pflogsumm", str(sample)])
    their_rate = got["lines"] / theirs.seconds
    row("pflogsumm (whole run)", theirs.seconds, f"{their_rate:,.0f} lines/s", theirs.peak_mb)
    print(
        f"  {'= mailtrace / pflogsumm lines per second':<44} {mine_rate / their_rate:8.2f} x"
        "   (target >= 4)"
    )


def million_lines(log: Path, scratch: Path) -> None:
    """Two lines a message name example.net (sender, message-id): a week of about 4 million
    lines gives a million to read, parse and keep in order to answer."""
    target = "@example.net"
    days = "2024-05-06..2024-05-12"
    heading(f"(6) a query reading about a million lines: {target} {days} in {log.name}")
    config = scratch / "million.yaml"
    server = {"name": "local", "local": True, "logs": [str(log)]}
    config.write_text(json.dumps({"servers": [server], "limits": {"max_lines": 2_000_000}}))
    argv = [MAILTRACE, "trace", target, days, "--config", str(config), "--format", "json"]
    mine = run(argv)
    row("mailtrace trace (max_lines 2,000,000)", mine.seconds, answer_size(mine.out), mine.peak_mb)
    print(f"  {'= peak RSS':<44} {mine.peak_mb:8.0f} MB   (target < 200 MB)")
    breakdown(mine.out, mine.seconds)
