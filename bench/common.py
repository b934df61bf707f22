"""Shared by the benchmark scenarios: running a command with its wall time and peak memory,
medians, and the printed rows (mailtrace next to its floor, with the issue's target).

Every measurement is a child process, so its peak resident memory is its own (`wait4`);
in-process cases (the warm pool, parse throughput) run in `bench/inproc.py` and report the
time they measured themselves on stdout as JSON.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PYTHON = sys.executable
MAILTRACE = str(Path(sys.executable).with_name("mailtrace"))
GREP = ["env", "LC_ALL=C", "grep", "-F"]


@dataclass(frozen=True)
class Run:
    """One child process: wall seconds, peak RSS in MB, its stdout and exit status."""

    seconds: float
    peak_mb: float
    out: str
    status: int


def run(argv: list[str], *, check: bool = True) -> Run:
    """Run `argv` once; exit 0 or 1 count as success (grep's "nothing found")."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        _pid, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text, problem = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if check and code not in (0, 1):
        sys.exit(f"failed ({code}): {' '.join(argv)[:300]}\n{problem[:800]}")
    return Run(seconds, usage.ru_maxrss / 1024, text, code)


def median_run(argv: list[str], repeat: int, **kwargs: Any) -> Run:
    """The median wall time of `repeat` runs; the highest peak memory among them."""
    runs = [run(argv, **kwargs) for _ in range(repeat)]
    middle = sorted(runs, key=lambda r: r.seconds)[len(runs) // 2]
    return Run(middle.seconds, max(r.peak_mb for r in runs), middle.out, middle.status)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def heading(text: str) -> None:
    print(f"\n{text}", flush=True)


def row(label: str, seconds: float, note: str = "", peak_mb: float | None = None) -> None:
    """One measured line: label, seconds, peak memory when known, and a note."""
    memory = f"  {peak_mb:5.0f} MB" if peak_mb else " " * 9
    print(f"  {label:<44} {seconds:8.3f} s{memory}  {note}".rstrip(), flush=True)


def ratio(label: str, value: float, floor: float, floor_name: str, target: str = "") -> None:
    """mailtrace's value as a multiple of its floor, with the issue's target."""
    got = value / floor if floor else float("nan")
    aim = f"   (target {target})" if target else ""
    print(f"  {'= ' + label:<44} {got:8.2f} x {floor_name}{aim}", flush=True)


def breakdown(json_text: str, wall: float | None = None) -> None:
    """The JSON answer's `timings`: phases, then one line per server; with the process's
    `wall` time, also what lies outside the search (start-up, imports, output, exit)."""
    try:
        doc = json.loads(json_text)
    except json.JSONDecodeError:
        print("    (no JSON answer)")
        return
    timings = doc.get("timings")
    if not isinstance(timings, dict):
        print("    (no timings in this version's JSON)")
        return
    print(breakdown_text(timings), flush=True)
    if wall is not None:
        outside = wall - float(timings.get("total_s", 0))
        print(f"    outside the search (start-up, imports, output, exit): {outside:.3f} s")


def breakdown_text(timings: dict[str, Any], indent: str = "    ") -> str:
    phases = ", ".join(f"{k} {v:.3f}" for k, v in timings.get("phases", {}).items())
    rows = [f"{indent}timings: total {timings.get('total_s', 0):.3f}; {phases}"]
    for server in timings.get("servers", [])[:3]:
        spent = ", ".join(f"{k} {v:.3f}" for k, v in server["phases"].items())
        rows.append(f"{indent}  {server['server']}: {spent}; {server['commands']} commands")
    more = len(timings.get("servers", [])) - 3
    if more > 0:
        rows.append(f"{indent}  ... and {more} more servers")
    return "\n".join(rows)


def answer_size(json_text: str) -> str:
    """'N messages, M lines read' from a JSON answer (for the row's note)."""
    try:
        doc = json.loads(json_text)
    except json.JSONDecodeError:
        return ""
    lines = sum(c.get("lines_read", 0) for c in doc.get("searched", []))
    return f"{len(doc.get('messages', []))} messages, {lines} lines read"
