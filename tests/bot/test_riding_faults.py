"""Pass 2 riding in pass 1's command when the server's tools fail or are slow, and questions
sharing one source at once: the answer is always the one pass 2 on its own gives."""

from __future__ import annotations

import asyncio
import gzip
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.query import parse_query
from bot.render.jsonout import render_json
from bot.result import SearchResult
from bot.search import run_search
from bot.settings import Limits, ServerConfig, Settings
from bot.sources import commands, grep_commands, riding
from bot.sources.runner import LocalRunner
from bot.sources.source import LogSource
from bot.timings import Timings
from tests.recording import RecordingRunner

ROTATED = Path(__file__).parent.parent / "fixtures" / "postfix" / "rotated"
NOW = datetime(2024, 12, 2, tzinfo=UTC)


def _settings(logs: str, **limits: float) -> Settings:
    server = ServerConfig(name="mx", local=True, logs=(logs,), year=2024)
    return Settings(servers=(server,), limits=Limits(**limits), default_days=None)


async def _ask(settings: Settings, sources: list[LogSource], text: str) -> SearchResult:
    query = parse_query(text, now=NOW, zone=UTC)
    return await run_search(query, settings, sources, now=NOW)


def _answer(result: SearchResult) -> str:
    return render_json(result.model_copy(update={"duration_s": 0.0, "timings": Timings()}))


async def _cold_and_warm(settings: Settings, text: str) -> tuple[list[str], RecordingRunner]:
    """The answers of one source asked twice (cold, then warm: listing and grep in one)."""
    runner = RecordingRunner("mx")
    source = LogSource(settings.servers[0], runner, settings.limits)
    answers = [_answer(await _ask(settings, [source], text)) for _ in range(2)]
    return answers, runner


async def _alone(settings: Settings, text: str) -> str:
    """The answer with pass 2 on its own (no riding), from a fresh source."""
    limits = settings.limits.model_copy(update={"pass2_ahead_mb": 0})
    alone = settings.model_copy(update={"limits": limits})
    source = LogSource(alone.servers[0], LocalRunner("mx"), limits)
    return _answer(await _ask(alone, [source], text))


def _fake_tool(directory: Path, name: str, script: str) -> None:
    directory.mkdir(exist_ok=True)
    (directory / name).write_text("#!/bin/sh\n" + script)
    (directory / name).chmod(0o755)


def _put_first_on_path(monkeypatch: pytest.MonkeyPatch, directory: Path) -> None:
    """The commands the local runner starts find `directory`'s tools first."""
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ['PATH']}")


async def test_missing_awk_reads_pass_1_again_instead_of_finding_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An awk that cannot run (exit 127) gets none of pass 1's lines through: the search sees
    pass 1 did not end, reads it again without riding and answers as pass 2 on its own; the
    next question on that server does not ride at all."""
    settings = _settings(f"{ROTATED}/mail.log*")
    question = "span@example.org 2024-11-28"
    alone = await _alone(settings, question)
    _fake_tool(tmp_path / "bin", "awk", "exit 127\n")
    _put_first_on_path(monkeypatch, tmp_path / "bin")
    answers, runner = await _cold_and_warm(settings, question)
    assert answers == [alone, alone]
    assert '"verdict": "delivered"' in alone
    assert sum("sum=$(" in c for c in runner.commands) == 1  # it rode once, failed, and stopped


async def test_awk_dying_midway_loses_no_mail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An awk that reads only pass 1's first two lines and fails: all three mails of the
    question are in the answer (pass 1 is read again), not only the first two."""
    day = "May 13 10:00:0{} mx postfix/{}[1]: {}: {}\n"
    sent = "to=<r@example.org>, relay=m[192.0.2.8]:25, delay=1, dsn=2.0.0, status=sent (250 ok)"
    lines = []
    ids = ("4A1B2C3D4E", "5B2C3D4E5F", "6C3D4E5F6A")
    for n, qid in enumerate(ids):
        lines += [
            day.format(n, "qmgr", qid, "from=<s@example.net>, size=1, nrcpt=1 (queue active)"),
            day.format(n, "smtp", qid, sent),
            day.format(n, "qmgr", qid, "removed"),
        ]
    (tmp_path / "mail.log").write_text("".join(lines))
    settings = _settings(f"{tmp_path}/mail.log")
    question = "s@example.net 2024-05-13"
    alone = await _alone(settings, question)
    awk = shutil.which("awk")
    assert awk is not None
    _fake_tool(tmp_path / "bin", "awk", f'head -n 2 | {awk} "$@"; exit 2\n')
    _put_first_on_path(monkeypatch, tmp_path / "bin")
    answers, _ = await _cold_and_warm(settings, question)
    assert answers == [alone, alone]
    assert all(qid in alone for qid in ids)


async def test_a_slow_ride_keeps_pass_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the riding pass 2's grep stalls past the command's time limit, the ride is ended
    within the command, pass 1's lines are kept and pass 2 runs on its own: the answer, not
    "timed out"."""
    settings = _settings(f"{ROTATED}/mail.log*", command_timeout=6)
    question = "span@example.org 2024-11-28"
    alone = await _alone(settings, question)
    stalled = tmp_path / "stalled"
    # in one command (one session), a grep for the queue ID after one for the address: the ride
    stall = (
        'sid=$(ps -o sid= -p $$ | tr -d " "); '
        f'case "$*" in *span@example.org*) : > "{tmp_path}/asked.$sid";; '
        f'*1A2FC22055F*) if [ -e "{tmp_path}/asked.$sid" ]; then : > "{stalled}"; sleep 60; fi;; '
        "esac\n"
    )
    for tool in ("grep", "rg"):
        real = shutil.which(tool)
        if real is not None:
            _fake_tool(tmp_path / "bin", tool, stall + f'exec {real} "$@"\n')
    _put_first_on_path(monkeypatch, tmp_path / "bin")
    answers, _ = await _cold_and_warm(settings, question)
    assert answers == [alone, alone]
    assert stalled.exists()  # the ride's pass 2 did stall


async def test_a_slow_listing_and_a_slow_ride_keep_pass_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Warm (listing and grep in one command), a listing that takes half the command's time
    and a riding pass 2 that stalls: the ride's time is counted from the command's start, so
    the command ends before its time limit, pass 1's lines are kept, and the answer is the one
    pass 2 on its own gives, not "timed out"."""
    settings = _settings(f"{ROTATED}/mail.log*", command_timeout=7)
    question = "span@example.org 2024-11-28"
    alone = await _alone(settings, question)
    slow = tmp_path / "slow"
    stalled = tmp_path / "stalled"
    real_find = shutil.which("find")
    assert real_find is not None
    _fake_tool(tmp_path / "bin", "find", f'[ -e "{slow}" ] && sleep 3.5\nexec {real_find} "$@"\n')
    stall = (  # only the ride's pass 2 greps with $ids set
        f'if [ -e "{slow}" ] && [ -n "$ids" ]; then : > "{stalled}"; sleep 60; fi\n'
    )
    for tool in ("grep", "rg"):
        real = shutil.which(tool)
        if real is not None:
            _fake_tool(tmp_path / "bin", tool, stall + f'exec {real} "$@"\n')
    _put_first_on_path(monkeypatch, tmp_path / "bin")
    runner = RecordingRunner("mx")
    source = LogSource(settings.servers[0], runner, settings.limits)
    cold = await _ask(settings, [source], question)
    slow.touch()
    warm = await _ask(settings, [source], question)
    assert warm.failures == ()
    assert [_answer(cold), _answer(warm)] == [alone, alone]
    assert any(riding.PASS1_END in c and "find" in c for c in runner.commands)  # it rode warm


async def test_awk_takes_no_words_for_queue_ids(tmp_path: Path) -> None:
    """Pass 1's lines "NOQUEUE: reject" and "warning:" name no queue ID: the ride fetches only
    real ones."""
    log = tmp_path / "mail.log"
    at = "May 13 10:00:00 mx postfix"
    log.write_text(
        f"{at}/smtpd[1]: NOQUEUE: reject: RCPT from c[192.0.2.1]: 554 5.7.1 <s@example.net>\n"
        f"{at}/smtpd[1]: warning: c[192.0.2.1]: s@example.net said hello\n"
        f"{at}/qmgr[2]: 4A1B2C3D4E: from=<s@example.net>, size=1, nrcpt=1 (queue active)\n"
    )
    paths = [str(log)]
    ride = riding.Ride(max_ids=10, region_bytes=0, sizes={str(log): 1}, seconds=30)
    script = riding.both_passes(grep_commands.grep_script(paths, ["s@example.net"]), paths, ride)
    lines = [line async for line in LocalRunner("mx").stream(commands.wrap(script, 30))]
    assert [x for x in lines if x.startswith(riding.IDS_PREFIX)] == ["I\t4A1B2C3D4E"]
    assert lines[-1] == riding.PASS2_END


async def test_compressed_files_count_decompressed_for_the_ride(tmp_path: Path) -> None:
    """A compressed log small on disk but larger than `pass2_ahead_mb` once decompressed is
    not read whole by a riding pass 2."""
    text = (
        "".join(
            f"May 13 10:00:00 mx postfix/smtpd[1]: connect from p{i}.example[192.0.2.{i % 250}]\n"
            for i in range(4000)
        )
        + "May 13 10:00:01 mx postfix/qmgr[2]: 4A1B2C3D4E: from=<s@example.net>, size=1\n"
    )
    packed = gzip.compress(text.encode())
    (tmp_path / "mail.log.1.gz").write_bytes(packed)
    limit_mb = 2 * len(packed) / 1024 / 1024  # twice the file on disk, far less than its text
    assert len(text) > 8 * 2 * len(packed)
    settings = _settings(f"{tmp_path}/mail.log*", pass2_ahead_mb=limit_mb)
    _, runner = await _cold_and_warm(settings, "s@example.net 2024-05-13")
    assert not any("sum=$(" in c for c in runner.commands)


def _day_logs(directory: Path) -> None:
    """Two days, one file each, many domains' mail interleaved in each."""
    for name, day in (("mail.log.1", 6), ("mail.log", 7)):
        lines = []
        for n in range(1500):
            qid = f"{day:X}{n:05X}AB"
            at = f"May  {day} {n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d} mx postfix"
            sender = f"u{n}@example{n % 20}.org"
            lines += [
                f"{at}/qmgr[2]: {qid}: from=<{sender}>, size=10, nrcpt=1 (queue active)\n",
                f"{at}/smtp[3]: {qid}: to=<r@example.com>, relay=m[192.0.2.8]:25, delay=1, "
                "delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)\n",
                f"{at}/qmgr[2]: {qid}: removed\n",
            ]
        (directory / name).write_text("".join(lines))
        stamp = datetime(2024, 5, day, 23, 59, tzinfo=UTC).timestamp()
        os.utime(directory / name, (stamp, stamp))


@pytest.mark.parametrize("ahead_mb", [16, 0])
async def test_questions_at_once_on_shared_sources_answer_as_alone(
    tmp_path: Path, ahead_mb: float
) -> None:
    """Questions about different days asked at once through the same sources (as the bot
    shares them) each get the answer they get asked alone: one question's files and pass 2
    never become another's."""
    _day_logs(tmp_path)
    settings = _settings(f"{tmp_path}/mail.log*", pass2_region_mb=0.03, pass2_ahead_mb=ahead_mb)
    questions = ["@example4.org 2024-05-06", "@example13.org 2024-05-07"] * 2
    alone = {}
    for question in questions[:2]:
        fresh = LogSource(settings.servers[0], LocalRunner("mx"), settings.limits)
        alone[question] = _answer(await _ask(settings, [fresh], question))
        assert '"verdict": "delivered"' in alone[question]
    shared = [LogSource(settings.servers[0], LocalRunner("mx"), settings.limits)]
    for _ in range(3):
        results = await asyncio.gather(*(_ask(settings, shared, q) for q in questions))
        assert [_answer(r) for r in results] == [alone[q] for q in questions]
