"""Reading a command's output in chunks: the same lines as line by line, the cap, early close."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import pytest

from bot.search_state import ServerState, read
from bot.settings import Limits, ServerConfig
from bot.sources.runner import MAX_LINE, Lines, LocalRunner
from bot.sources.source import LogSource

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "postfix"
REAL = (FIXTURES / "filters" / "mail.log").read_bytes()
# real lines, then a character cut by chunks, an invalid byte, CRLF, and no final newline
ODD = REAL + "Ünïcødé ✓ line\n".encode() + b"bad \xff\xfe byte\r\nhalf \xe2\x9c\r\nlast"


def _one_by_one(data: bytes) -> list[str]:
    """What reading line by line gives: each line decoded alone, its line ending stripped."""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return [line.decode("utf-8", errors="replace").rstrip("\r\n") for line in lines]


def _in_chunks(data: bytes, size: int) -> list[str]:
    lines = Lines()
    out: list[str] = []
    for at in range(0, len(data), size):
        out += lines.feed(data[at : at + size])
    return out + lines.end()


@pytest.mark.parametrize("size", [1, 2, 3, 7, 100, 4096, 65536, len(ODD)])
def test_chunks_of_any_size_give_the_lines_of_reading_line_by_line(size: int) -> None:
    """However the output is cut into chunks (inside a line, a character, a CRLF), the lines
    are those read one by one: bad bytes replaced, line endings stripped, the last line kept."""
    assert _in_chunks(ODD, size) == _one_by_one(ODD)


@pytest.mark.parametrize("size", [1000, 65536, 3 * MAX_LINE])
def test_an_over_long_line_is_cut_and_the_next_lines_kept(size: int) -> None:
    """A line longer than MAX_LINE comes back as its first MAX_LINE characters, once; the
    lines around it are intact."""
    data = b"before\n" + b"x" * (2 * MAX_LINE + 5) + b"\nafter\n"
    assert _in_chunks(data, size) == ["before", "x" * MAX_LINE, "after"]


async def test_local_runner_batches_the_output_of_a_real_command(tmp_path: Path) -> None:
    """The local runner's batches, joined, are the command's lines (a real file through cat)."""
    log = tmp_path / "mail.log"
    log.write_bytes(ODD * 40)  # several chunks
    batches = [b async for b in LocalRunner("mx").batches(f"cat {log}")]
    assert len(batches) > 1
    assert all(batches)
    assert [line for b in batches for line in b] == _one_by_one(ODD * 40)


async def test_closing_the_batches_early_ends_the_command(tmp_path: Path) -> None:
    """A consumer that stops after the first batch ends the command's processes at once,
    not when the command would have finished."""
    pid_file = tmp_path / "pid"
    command = f"echo $$ > {pid_file}; while :; do echo line; done"
    batches = LocalRunner("mx").batches(command)
    async with contextlib.aclosing(batches) as each:
        async for _ in each:
            break
    pid = int(pid_file.read_text())
    for _ in range(100):  # the kill is sent; the kernel reaps the shell a moment later
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        await asyncio.sleep(0.05)
    pytest.fail("the command still runs after its output was closed")


async def test_the_line_cap_counts_lines_across_batches(tmp_path: Path) -> None:
    """With lines arriving in many batches, the cap stops after exactly `max_lines` events,
    the first ones in file order, and marks the server truncated."""
    log = tmp_path / "mail.log"
    log.write_bytes(REAL * 200)
    os.utime(log, (1_800_000_000, 1_800_000_000))
    server = ServerConfig(name="mx", local=True, logs=(str(log),), year=2026)
    source = LogSource(server, LocalRunner("mx"), Limits(max_lines=5_001))
    files = await source.list_files()
    st = ServerState(source)
    events = [e async for e in read(st, files, ["postfix"])]
    every = [line for line in REAL.decode().splitlines() if "postfix" in line] * 200
    assert len(every) > 5_001
    assert [e.raw for e in events] == every[:5_001]
    assert st.truncated
    assert st.lines == 5_002
