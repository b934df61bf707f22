"""Fetching with real grep on this machine: listing, dating, compressed files, hostile patterns."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.errors import CommandTimeout, ConfigError, NoLogFiles
from bot.settings import Limits, ServerConfig
from bot.sources import commands, grep_commands, listing_commands
from bot.sources.runner import LocalRunner
from bot.sources.source import LogSource
from parsers.models import Status
from parsers.trace import group_messages
from tests.recording import RecordingRunner

DAY1 = "May 11 09:00:00 mx postfix/qmgr[1]: AAAA1: from=<old@example.net>, size=1, nrcpt=1 (queue active)\n"
DAY2 = "May 12 09:00:00 mx postfix/qmgr[1]: BBBB2: from=<mid@example.net>, size=1, nrcpt=1 (queue active)\n"
DAY3 = "May 13 09:00:00 mx postfix/qmgr[1]: CCCC3: from=<new@example.net>, size=1, nrcpt=1 (queue active)\n"


def _stamp(path: Path, when: datetime) -> None:
    os.utime(path, (when.timestamp(), when.timestamp()))


@pytest.fixture
def logdir(tmp_path: Path) -> Path:
    """mail.log (May 13), mail.log.1 (May 12), mail.log.2.gz (May 11), plus .bz2/.xz copies."""
    (tmp_path / "mail.log").write_text(DAY3)
    (tmp_path / "mail.log.1").write_text(DAY2)
    with gzip.open(tmp_path / "mail.log.2.gz", "wt") as handle:
        handle.write(DAY1)
    (tmp_path / "mail.log.3.bz2").write_bytes(bz2.compress(DAY1.replace("AAAA1", "DDDD4").encode()))
    (tmp_path / "mail.log.4.xz").write_bytes(lzma.compress(DAY1.replace("AAAA1", "EEEE5").encode()))
    (tmp_path / "other.log").write_text("not a mail log\n")
    _stamp(tmp_path / "mail.log", datetime(2024, 5, 13, 23, 0, tzinfo=UTC))
    _stamp(tmp_path / "mail.log.1", datetime(2024, 5, 12, 23, 0, tzinfo=UTC))
    for name in ("mail.log.2.gz", "mail.log.3.bz2", "mail.log.4.xz"):
        _stamp(tmp_path / name, datetime(2024, 5, 11, 23, 0, tzinfo=UTC))
    return tmp_path


def _source(logdir: Path, pattern: str = "mail.log*", **limits: float) -> LogSource:
    server = ServerConfig(name="mx", local=True, logs=(f"{logdir}/{pattern}",))
    return LogSource(server, LocalRunner("mx"), Limits(**limits))  # type: ignore[arg-type]


async def test_lists_rotated_and_compressed_files_with_their_span(logdir: Path) -> None:
    """Every matching file is listed oldest first, each dated by its first line."""
    files = await _source(logdir).list_files()
    names = [Path(f.path).name for f in files]
    assert names[-2:] == ["mail.log.1", "mail.log"]
    assert set(names) == {
        "mail.log",
        "mail.log.1",
        "mail.log.2.gz",
        "mail.log.3.bz2",
        "mail.log.4.xz",
    }
    newest = files[-1]
    assert newest.first_seen == datetime(2024, 5, 13, 9, 0, tzinfo=UTC)
    assert newest.mtime == datetime(2024, 5, 13, 23, 0, tzinfo=UTC)
    assert not newest.covers(datetime(2024, 5, 14, tzinfo=UTC), None)
    assert newest.covers(datetime(2024, 5, 13, tzinfo=UTC), datetime(2024, 5, 14, tzinfo=UTC))
    assert not newest.covers(datetime(2024, 5, 11, tzinfo=UTC), datetime(2024, 5, 12, tzinfo=UTC))


async def test_grep_reads_every_compression(logdir: Path) -> None:
    """Fixed-string grep finds lines in plain, gzip, bzip2 and xz files and names each file."""
    source = _source(logdir)
    files = await source.list_files()
    events = [e async for e in source.grep(files, ["AAAA1", "DDDD4", "EEEE5", "CCCC3"])]
    found = {(Path(e.path or "").name, e.queue_id) for e in events}
    assert found == {
        ("mail.log.2.gz", "AAAA1"),
        ("mail.log.3.bz2", "DDDD4"),
        ("mail.log.4.xz", "EEEE5"),
        ("mail.log", "CCCC3"),
    }
    for e in events:
        assert e.timestamp is not None
        assert e.timestamp.year == 2024


@pytest.mark.skipif(shutil.which("zstd") is None, reason="zstd is not installed")
async def test_grep_reads_zstd(logdir: Path) -> None:
    """zstd-compressed rotations are read too."""
    subprocess.run(
        ["zstd", "-q", str(logdir / "mail.log.1"), "-o", str(logdir / "mail.log.5.zst")], check=True
    )
    source = _source(logdir)
    files = [f for f in await source.list_files() if f.path.endswith(".zst")]
    events = [e async for e in source.grep(files, ["BBBB2"])]
    assert [e.queue_id for e in events] == ["BBBB2"]


async def test_no_match_is_not_an_error(logdir: Path) -> None:
    """grep's exit status 1 (no match) yields nothing and raises nothing."""
    source = _source(logdir)
    files = await source.list_files()
    assert [e async for e in source.grep(files, ["nothing-like-this"])] == []


async def test_one_bad_file_is_a_problem_not_a_failure(logdir: Path) -> None:
    """A corrupt .gz and a file rotated away after listing are reported; the rest is searched."""
    (logdir / "mail.log.9.gz").write_bytes(b"this is not gzip")
    source = _source(logdir)
    files = await source.list_files()
    (logdir / "mail.log.1").unlink()  # rotated away between listing and grep
    problems: list[str] = []
    events = [e async for e in source.grep(files, ["AAAA1", "CCCC3", "BBBB2"], problems=problems)]
    assert sorted(e.queue_id or "" for e in events) == ["AAAA1", "CCCC3"]
    assert sorted(problems) == [
        f"{logdir}/mail.log.1: cannot be read (permission denied, or rotated away since it was listed)",
        f"{logdir}/mail.log.9.gz: could not be decompressed (corrupt, or still being written)",
    ]


async def test_no_log_files(tmp_path: Path) -> None:
    """A glob that matches nothing is a clear NoLogFiles error naming the glob."""
    with pytest.raises(NoLogFiles) as info:
        await _source(tmp_path, "maillog*").list_files()
    assert f"{tmp_path}/maillog*" in str(info.value)


async def test_timeout_ends_the_command(tmp_path: Path) -> None:
    """A command past its time limit is ended by `timeout` and reported as a timeout."""
    runner = LocalRunner("mx")
    with pytest.raises(CommandTimeout):
        _ = [line async for line in runner.stream(commands.wrap("sleep 30", 1))]


@pytest.mark.parametrize(
    "pattern",
    [
        "; touch {marker}",
        "$(touch {marker})",
        "`touch {marker}`",
        "' ; touch {marker} ; '",
        '" ; touch {marker} ; "',
        "-f/etc/shadow",
        "--help",
        "*",
        "é ✉ {marker}",
        "x" * 5000,
    ],
)
async def test_hostile_patterns_are_literal(logdir: Path, pattern: str) -> None:
    """A hostile pattern is searched for literally: nothing runs, and only its literal line matches."""
    marker = logdir / "pwned"
    pattern = pattern.format(marker=marker)
    with (logdir / "mail.log").open("a") as handle:
        handle.write(f"May 13 10:00:00 mx postfix/smtpd[1]: literal {pattern} here\n")
    source = _source(logdir)
    files = await source.list_files()
    events = [e async for e in source.grep(files, [pattern])]
    assert [e.text for e in events] == [f"literal {pattern} here"]
    assert not marker.exists()


def test_patterns_with_newlines_are_refused() -> None:
    """A newline could start a second command: grep_command refuses it outright."""
    with pytest.raises(ValueError, match="single, non-empty lines"):
        grep_commands.grep_command(["/var/log/mail.log"], ["a\nb"])


def test_globs_must_keep_wildcards_in_the_file_name() -> None:
    """Configured globs may not use wildcards or relative paths in the directory part."""
    for glob in ("/var/*/mail.log", "var/log/mail.log", "/var/log/$(id)"):
        with pytest.raises(ConfigError):
            listing_commands.split_glob(glob)


async def test_first_lines_are_cached_until_a_file_changes(logdir: Path) -> None:
    """The listing itself dates every file, compressed ones too (no command of its own); a
    compressed file's first line is decompressed once, and again only when the file changes."""
    server = ServerConfig(name="mx", local=True, logs=(f"{logdir}/mail.log*",))
    runner = RecordingRunner("mx")
    source = LogSource(server, runner, Limits())
    files = await source.list_files()
    assert len(runner.commands) == 1  # the listing, with every file's first line
    assert [f.first_seen.day if f.first_seen else None for f in files] == [11, 11, 11, 12, 13]
    gz, bz = str(logdir / "mail.log.2.gz"), str(logdir / "mail.log.3.bz2")
    assert f"/{gz}" not in runner.commands[-1]  # nothing known yet: no key names a file
    await source.list_files()
    assert len(runner.commands) == 2  # the listing only, the known first lines not read again
    assert f"/{gz}" in runner.commands[-1]
    assert f"/{bz}" in runner.commands[-1]
    with (logdir / "mail.log").open("a") as handle:
        handle.write(DAY3)
    files = await source.list_files()
    assert len(runner.commands) == 3  # the growing plain file needs no command of its own
    assert {f.path for f in files if f.first_seen is None} == set()
    with gzip.open(logdir / "mail.log.2.gz", "wt") as handle:
        handle.write(DAY2)
    files = await source.list_files()
    assert len(runner.commands) == 4  # the listing, which reads the changed file's first line
    (changed,) = [f for f in files if f.path == gz]
    assert changed.first_seen is not None
    assert changed.first_seen.day == 12


async def test_repeated_dst_hour_keeps_the_file_order(tmp_path: Path) -> None:
    """When Berlin falls back, 02:00:01 after 02:59:59 is the second 02:00 (CET), so the message
    stays one, in order, and is sent."""
    (tmp_path / "mail.log").write_text(
        "Oct 27 02:59:59 mx1 postfix/smtpd[1]: 4104E3D: client=c[198.51.100.1]\n"
        "Oct 27 02:59:59 mx1 postfix/qmgr[3]: 4104E3D: from=<s@example.net>, size=1, nrcpt=1 (queue active)\n"
        "Oct 27 02:00:01 mx1 postfix/smtp[4]: 4104E3D: to=<r@example.org>, relay=mx[192.0.2.8]:25, delay=2, delays=0/0/0/2, dsn=2.0.0, status=sent (250 ok)\n"
        "Oct 27 02:00:01 mx1 postfix/qmgr[3]: 4104E3D: removed\n"
    )
    stamp = datetime(2024, 10, 28, tzinfo=UTC).timestamp()
    os.utime(tmp_path / "mail.log", (stamp, stamp))
    server = ServerConfig(
        name="mx", local=True, logs=(f"{tmp_path}/mail.log",), timezone="Europe/Berlin"
    )
    source = LogSource(server, LocalRunner("mx"), Limits())
    events = [e async for e in source.grep(await source.list_files(), ["4104E3D"])]
    instants = [e.timestamp.astimezone(UTC).strftime("%H:%M:%S") for e in events if e.timestamp]
    assert instants == ["00:59:59", "00:59:59", "01:00:01", "01:00:01"]
    (message,) = group_messages(events)
    assert message.status is Status.SENT
