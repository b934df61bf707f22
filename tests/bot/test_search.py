"""The search pipeline on local sources: two passes, regions, hops, failures, windows."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from bot.query import parse_query
from bot.search import run_search
from bot.settings import Limits, ServerConfig, Settings
from bot.sources import grep_commands
from bot.sources.factory import build_sources
from bot.sources.source import LogSource
from parsers.models import LinkKind, Status
from tests.recording import RecordingRunner

NOW = datetime(2024, 5, 14, 12, 0, tzinfo=UTC)


def _line(t: str, daemon: str, text: str, host: str = "mx") -> str:
    return f"May 13 {t} {host} postfix/{daemon}[1]: {text}\n"


def _message(qid: str, t: str, sender: str, rcpt: str, status: str = "sent (250 ok)") -> str:
    return (
        _line(t, "smtpd", f"{qid}: client=c.example[192.0.2.9]")
        + _line(t, "cleanup", f"{qid}: message-id=<{qid}@example>")
        + _line(t, "qmgr", f"{qid}: from=<{sender}>, size=10, nrcpt=1 (queue active)")
        + _line(
            t,
            "smtp",
            f"{qid}: to=<{rcpt}>, relay=mx.example.org[198.51.100.7]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status={status}",
        )
        + _line(t, "qmgr", f"{qid}: removed")
    )


def _noise(n: int) -> str:
    return "".join(
        _line("09:00:00", "smtpd", f"connect from noise{i}.example[198.51.100.{i % 250}]")
        for i in range(n)
    )


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    stamp = datetime(2024, 5, 13, 23, 0, tzinfo=UTC).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def _settings(*servers: ServerConfig, **limits: float) -> Settings:
    return Settings(servers=servers, limits=Limits(**limits), default_days=None)  # type: ignore[arg-type]


async def _run(settings: Settings, text: str):  # type: ignore[no-untyped-def]
    query = parse_query(text, now=NOW, zone=UTC)
    return await run_search(query, settings, build_sources(settings), now=NOW)


async def test_pass_two_regions_and_fallback(tmp_path: Path) -> None:
    """With tiny pass-2 regions, a message whose first line is far before the hit is still whole."""
    early = _line("08:00:00", "smtpd", "ABCDE1: client=c.example[192.0.2.9]")
    rest = (
        _line("10:00:00", "qmgr", "ABCDE1: from=<far@example.net>, size=10, nrcpt=1 (queue active)")
        + _line(
            "10:00:01",
            "smtp",
            "ABCDE1: to=<r@example.org>, relay=mx.example.org[198.51.100.7]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)",
        )
        + _line("10:00:01", "qmgr", "ABCDE1: removed")
    )
    log = _write(
        tmp_path / "mail.log",
        early
        + _noise(3000)
        + _message("FEDCB2", "09:30:00", "near@example.net", "r@example.org")
        + _noise(3000)
        + rest
        + _noise(3000),
    )
    server = ServerConfig(name="mx", local=True, logs=(str(log),))
    settings = _settings(server, pass2_region_mb=0.02)
    far = await _run(settings, "far@example.net 2024-05-13")
    (message,) = far.messages
    assert message.queue_id == "ABCDE1"
    assert not message.started_before_logs
    assert message.client == "c.example[192.0.2.9]"
    near = await _run(settings, "near@example.net 2024-05-13")
    (message,) = near.messages
    assert len(message.lines) == 5
    assert message.status is Status.SENT


async def test_hop_to_another_configured_server(tmp_path: Path) -> None:
    """A delivery 'queued as' on a configured relay is traced there, and back from there."""
    a = _write(
        tmp_path / "a.log",
        _line("10:00:00", "smtpd", "AAAA11: client=c.example[192.0.2.9]", "mx-a")
        + _line(
            "10:00:00",
            "qmgr",
            "AAAA11: from=<s@example.net>, size=10, nrcpt=1 (queue active)",
            "mx-a",
        )
        + _line(
            "10:00:01",
            "smtp",
            "AAAA11: to=<r@example.org>, relay=mx-b.test[127.0.0.1]:2526, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as BBBB22)",
            "mx-a",
        )
        + _line("10:00:01", "qmgr", "AAAA11: removed", "mx-a"),
    )
    b = _write(
        tmp_path / "b.log",
        _line("10:00:01", "smtpd", "BBBB22: client=mx-a.test[127.0.0.1]", "mx-b")
        + _line(
            "10:00:01",
            "qmgr",
            "BBBB22: from=<s@example.net>, size=10, nrcpt=1 (queue active)",
            "mx-b",
        )
        + _line(
            "10:00:02",
            "local",
            'BBBB22: to=<r@example.org>, relay=local, delay=1, delays=0/0/0/1, dsn=5.1.1, status=bounced (unknown user: "r")',
            "mx-b",
        )
        + _line("10:00:02", "qmgr", "BBBB22: removed", "mx-b"),
    )
    settings = _settings(
        ServerConfig(name="mx-a", local=True, logs=(str(a),), aliases=("mx-a.test",)),
        ServerConfig(name="mx-b", local=True, logs=(str(b),), aliases=("mx-b.test",)),
    )
    result = await _run(settings, "BBBB22 on mx-b")
    assert [(m.host, m.queue_id) for m in result.messages] == [
        ("mx-a", "AAAA11"),
        ("mx-b", "BBBB22"),
    ]
    first, second = result.messages
    assert (LinkKind.NEXT_HOP, "BBBB22", "mx-b") in {
        (k.kind, k.queue_id, k.host) for k in first.links
    }
    assert second.status is Status.BOUNCED
    forward = await _run(settings, "s@example.net 2024-05-13 on mx-a")
    assert [(m.host, m.status) for m in forward.messages] == [
        ("mx-a", Status.SENT),
        ("mx-b", Status.BOUNCED),
    ]


async def test_one_failing_server_keeps_the_others_results(tmp_path: Path) -> None:
    """A server with no log files is one failure line; the other server's answer is complete."""
    good = _write(
        tmp_path / "good.log", _message("CAFE01", "10:00:00", "s@example.net", "r@example.org")
    )
    settings = _settings(
        ServerConfig(name="good", local=True, logs=(str(good),)),
        ServerConfig(name="bad", local=True, logs=(str(tmp_path / "missing" / "mail.log*"),)),
    )
    result = await _run(settings, "s@example.net 2024-05-13")
    assert [m.queue_id for m in result.messages] == ["CAFE01"]
    assert [(f.server, f.reason) for f in result.failures] == [("bad", "no log files")]
    assert len(result.messages[0].lines) == 5


async def test_pre_queue_reject_is_its_own_entry(tmp_path: Path) -> None:
    """A NOQUEUE reject for the address appears as a rejected message without a queue ID."""
    log = _write(
        tmp_path / "mail.log",
        _line(
            "10:00:00",
            "smtpd",
            "NOQUEUE: reject: RCPT from c.example[192.0.2.9]: 554 5.7.1 <r@example.org>: Relay access denied; from=<s@example.net> to=<r@example.org> proto=ESMTP helo=<c>",
        ),
    )
    settings = _settings(ServerConfig(name="mx", local=True, logs=(str(log),)))
    result = await _run(settings, "r@example.org 2024-05-13")
    (message,) = result.messages
    assert message.queue_id is None
    assert message.status is Status.REJECTED
    assert message.recipients[0].dsn == "5.7.1"
    assert "our policy refused it" in message.recipients[0].action_by


async def test_message_cap_is_a_note(tmp_path: Path) -> None:
    """More messages than max_messages: the first ones are shown and a note says so."""
    text = "".join(
        _message(f"D{n:05X}", f"10:{n:02d}:00", "bulk@example.net", f"r{n}@example.org")
        for n in range(5)
    )
    log = _write(tmp_path / "mail.log", text)
    settings = _settings(ServerConfig(name="mx", local=True, logs=(str(log),)), max_messages=2)
    result = await _run(settings, "bulk@example.net 2024-05-13")
    assert len(result.messages) == 2
    assert any("Showing the first 2 of 5 messages" in note for note in result.notes)


async def test_message_cap_with_lines_out_of_time_order(tmp_path: Path) -> None:
    """A message whose older line comes later in the file still ranks by that line under the cap."""
    late = _line(
        "10:05:00", "smtp", "D0000A: to=<a1@example.org>, relay=local, dsn=2.0.0, status=sent (ok)"
    )
    early = _line(
        "10:00:00", "smtp", "D0000A: to=<a2@example.org>, relay=local, dsn=2.0.0, status=sent (ok)"
    )
    text = (
        _message("D0000B", "10:01:00", "s@example.net", "b@example.org")
        + _message("D0000C", "10:02:00", "s@example.net", "c@example.org")
        + _line("10:05:00", "qmgr", "D0000A: from=<s@example.net>, size=10, nrcpt=2 (queue active)")
        + late
        + early
        + _line("10:05:00", "qmgr", "D0000A: removed")
    )
    log = _write(tmp_path / "mail.log", text)
    settings = _settings(ServerConfig(name="mx", local=True, logs=(str(log),)), max_messages=2)
    result = await _run(settings, "@example.org 2024-05-13")
    assert [m.queue_id for m in result.messages] == ["D0000A", "D0000B"]
    assert [r.address for r in result.messages[0].recipients] == [
        "a2@example.org",
        "a1@example.org",
    ]
    assert any("Showing the first 2 of 3 messages" in note for note in result.notes)


async def test_bad_file_is_a_note_and_the_rest_is_answered(tmp_path: Path) -> None:
    """A corrupt rotated file costs only its own lines: the answer stands, with a note."""
    good = _write(
        tmp_path / "mail.log", _message("CAFE01", "10:00:00", "s@example.net", "r@example.org")
    )
    (tmp_path / "mail.log.2.gz").write_bytes(b"not gzip at all")
    settings = _settings(ServerConfig(name="mx", local=True, logs=(f"{tmp_path}/mail.log*",)))
    result = await _run(settings, "s@example.net")
    assert [m.queue_id for m in result.messages] == ["CAFE01"]
    assert result.failures == ()
    assert result.notes == (
        f"mx: {tmp_path}/mail.log.2.gz: could not be decompressed (corrupt, or still being written); "
        "its lines are missing from this answer.",
    )
    assert good.exists()


async def test_reused_queue_id_keeps_only_the_life_that_was_asked_about(tmp_path: Path) -> None:
    """Postfix reuses a short queue ID: only the life that names the target is answered."""
    text = _message("BEEF01", "09:00:00", "old@example.net", "a@example.org") + _message(
        "BEEF01", "10:00:00", "new@example.net", "b@example.org"
    )
    log = _write(tmp_path / "mail.log", text)
    settings = _settings(ServerConfig(name="mx", local=True, logs=(str(log),)))
    result = await _run(settings, "new@example.net 2024-05-13")
    (message,) = result.messages
    assert message.sender == "new@example.net"
    assert [r.address for r in message.recipients] == ["b@example.org"]


async def test_open_message_is_followed_into_later_files_only(tmp_path: Path) -> None:
    """A message deferred in yesterday's file is followed into today's, and not into older ones."""
    older = _write(tmp_path / "mail.log.2", _noise(3))
    os.utime(older, (datetime(2024, 5, 11, 23, tzinfo=UTC).timestamp(),) * 2)
    deferred = (
        _line("10:00:00", "smtpd", "D1FE01: client=c.example[192.0.2.9]").replace(
            "May 13", "May 12"
        )
        + _line(
            "10:00:00", "qmgr", "D1FE01: from=<late@example.net>, size=10, nrcpt=1 (queue active)"
        ).replace("May 13", "May 12")
        + _line(
            "10:00:01",
            "smtp",
            "D1FE01: to=<r@example.org>, relay=none, delay=1, delays=0/0/1/0, dsn=4.4.1, status=deferred (connect to mx.example.org[198.51.100.7]:25: Connection refused)",
        ).replace("May 13", "May 12")
    )
    yesterday = _write(tmp_path / "mail.log.1", deferred)
    os.utime(yesterday, (datetime(2024, 5, 12, 23, tzinfo=UTC).timestamp(),) * 2)
    _write(
        tmp_path / "mail.log",
        _line(
            "09:00:00",
            "smtp",
            "D1FE01: to=<r@example.org>, relay=mx.example.org[198.51.100.7]:25, delay=80000, delays=80000/0/0/0, dsn=2.0.0, status=sent (250 ok)",
        )
        + _line("09:00:00", "qmgr", "D1FE01: removed"),
    )
    settings = _settings(ServerConfig(name="mx", local=True, logs=(f"{tmp_path}/mail.log*",)))
    result = await _run(settings, "late@example.net 2024-05-12")
    (message,) = result.messages
    assert message.status is Status.SENT
    assert message.recipients[0].attempts == 2
    searched = {Path(f.path).name for f in result.searched[0].files if f.searched}
    assert searched == {"mail.log.1", "mail.log"}


def _pad(label: str, n: int, t: str = "09:00:00") -> str:
    return "".join(
        _line(t, "smtpd", f"connect from {label}{i:04d}.example[192.0.2.1]") for i in range(n)
    )


async def test_region_edges_never_leave_cut_lines(tmp_path: Path) -> None:
    """Wherever a pass-2 region ends, no cut copy of a line is kept beside the full line."""
    body = (
        _pad("a", 60)
        + _line("10:00:00", "smtpd", "4A1B2C3D4E: client=c[203.0.113.5]")
        + _line(
            "10:00:00", "qmgr", "4A1B2C3D4E: from=<s@example.net>, size=1, nrcpt=1 (queue active)"
        )
        + _pad("f", 20, "10:00:00")
        + _line(
            "10:00:01",
            "smtp",
            "4A1B2C3D4E: to=<r@example.org>, relay=mx[192.0.2.8]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)",
        )
        + _line("10:00:01", "qmgr", "4A1B2C3D4E: removed")
        + _pad("z", 200)
    )
    log = _write(tmp_path / "mail.log", body)
    for kib in [n / 20 for n in range(20, 120)]:  # the region ends every ~40 bytes along the way
        settings = _settings(
            ServerConfig(name="mx", local=True, logs=(str(log),)), pass2_region_mb=kib / 1024
        )
        result = await _run(settings, "s@example.net 2024-05-13")
        (message,) = result.messages
        assert [(r.address, r.status) for r in message.recipients] == [
            ("r@example.org", Status.SENT)
        ], kib
        assert len(message.lines) == 4, kib


async def test_reused_id_complete_elsewhere_does_not_stop_pass_two(tmp_path: Path) -> None:
    """An older, complete life of the same ID in another file does not make the asked-about life
    look complete: its later lines outside the region are still read."""
    older = _write(
        tmp_path / "mail.log.1",
        _message("4A1B2C3D4E", "08:00:00", "o@example.net", "o2@example.org").replace(
            "May 13", "May 12"
        ),
    )
    os.utime(older, (datetime(2024, 5, 12, 23, tzinfo=UTC).timestamp(),) * 2)
    _write(
        tmp_path / "mail.log",
        _line("10:00:00", "smtpd", "4A1B2C3D4E: client=c[203.0.113.5]")
        + _line("10:00:00", "cleanup", "4A1B2C3D4E: message-id=<new@x>")
        + _line(
            "10:00:00", "qmgr", "4A1B2C3D4E: from=<s@example.net>, size=1, nrcpt=1 (queue active)"
        )
        + _line(
            "10:00:01",
            "smtp",
            "4A1B2C3D4E: to=<r@example.org>, relay=none, delay=1, delays=0/0/0/1, dsn=4.4.1, status=deferred (connect to mx[192.0.2.8]:25: Connection refused)",
        )
        + _pad("f", 150, "10:10:00")
        + _line(
            "10:30:01",
            "smtp",
            "4A1B2C3D4E: to=<r@example.org>, relay=mx[192.0.2.8]:25, delay=1801, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)",
        )
        + _line("10:30:01", "qmgr", "4A1B2C3D4E: removed"),
    )
    settings = _settings(
        ServerConfig(name="mx", local=True, logs=(f"{tmp_path}/mail.log*",)), pass2_region_mb=0.002
    )
    result = await _run(settings, "<new@x>")
    (message,) = result.messages
    assert message.status is Status.SENT
    assert message.recipients[0].attempts == 2


async def test_pass2_reads_regions_and_whole_files_in_one_command(tmp_path: Path) -> None:
    """Pass 2 over a large file (read around the hit) and a small one (read whole) is one remote
    command of its own, or rides in pass 1's; the message is complete and the same either way."""
    big = _write(
        tmp_path / "mail.log",
        _noise(3000)
        + _message("ABCDE1", "10:00:00", "one@example.net", "r@example.org")
        + _noise(3000),
    )
    _write(tmp_path / "mail.log.1", _noise(5))
    server = ServerConfig(name="mx", local=True, logs=(f"{tmp_path}/mail.log*",))
    answers = []
    for ahead_mb, expected in ((0, 2), (16, 1)):  # pass 1, pass 2 of both files; or both in one
        settings = _settings(server, pass2_region_mb=0.02, pass2_ahead_mb=ahead_mb)
        runner = RecordingRunner("mx")
        source = LogSource(server, runner, settings.limits_for(server))
        query = parse_query("one@example.net 2024-05-13", now=NOW, zone=UTC)
        result = await run_search(query, settings, [source], now=NOW)
        (message,) = result.messages
        assert len(message.lines) == 5
        assert message.status is Status.SENT
        greps = [c for c in runner.commands if "grep -F" in c or grep_commands.RG in c]
        assert len(greps) == expected, ahead_mb
        assert str(big) in greps[-1]
        assert "mail.log.1" in greps[-1]
        assert "dd if=" in greps[-1]  # the large file read in a region
        answers.append((result.messages, result.searched))
    assert answers[0] == answers[1]
