"""journald as a source: real journal files (written by systemd-journal-remote from the captured
Postfix lines) read by real journalctl, one UTC day at a time."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.query import parse_query
from bot.search import run_search
from bot.settings import ServerConfig, Settings
from bot.sources.factory import build_sources
from parsers.envelope import YearGuess, parse_envelope
from parsers.models import Status

REMOTE = Path("/lib/systemd/systemd-journal-remote")
MX_A = (
    Path(__file__).resolve().parent.parent
    / "fixtures"
    / "postfix"
    / "two-hosts"
    / "mx-a"
    / "mail.log"
)


def _require_journal_tools() -> None:
    missing = [str(p) for p in (REMOTE,) if not p.exists()]
    if shutil.which("journalctl") is None:
        missing.append("journalctl")
    if not missing:
        return
    message = f"journal tools missing: {', '.join(missing)} (apt packages systemd, systemd-journal-remote)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _field(name: str, value: str) -> bytes:
    return f"{name}={value}\n".encode()


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A journal directory holding mx-a's captured lines as journald would have stored them."""
    _require_journal_tools()
    directory = tmp_path_factory.mktemp("journal")
    export = bytearray()
    years = YearGuess(datetime(2026, 12, 31, tzinfo=UTC), fixed=2026)
    for n, line in enumerate(MX_A.read_text(encoding="utf-8").splitlines()):
        env = parse_envelope(line, years=years)
        assert env is not None
        assert env.timestamp is not None
        micros = int(env.timestamp.timestamp() * 1_000_000)
        export += _field("__REALTIME_TIMESTAMP", str(micros))
        export += _field("__MONOTONIC_TIMESTAMP", str(n + 1))
        export += _field("_BOOT_ID", "0123456789abcdef0123456789abcdef")
        export += _field("_HOSTNAME", env.host or "mx-a")
        export += _field("SYSLOG_IDENTIFIER", env.program or "postfix")
        export += _field("_PID", str(env.pid or 1))
        export += _field("MESSAGE", env.text) + b"\n"
    subprocess.run(
        [str(REMOTE), "-o", str(directory / "mx-a.journal"), "-"],
        input=bytes(export),
        check=True,
        capture_output=True,
    )
    return directory


async def _trace(journal: Path, text: str):  # type: ignore[no-untyped-def]
    server = ServerConfig(
        name="mx-a", local=True, source="journald", journal_directory=str(journal)
    )
    settings = Settings(servers=(server,), default_days=None)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    return await run_search(
        parse_query(text, now=now, zone=UTC), settings, build_sources(settings), now=now
    )


async def test_journal_days_are_listed(journal: Path) -> None:
    """The journal is planned as one pseudo file per UTC day it covers."""
    server = ServerConfig(
        name="mx-a", local=True, source="journald", journal_directory=str(journal)
    )
    (source,) = build_sources(Settings(servers=(server,)))
    files = await source.list_files()
    assert [f.path for f in files] == ["journald:2026-11-28"]
    assert files[0].first_seen is not None
    assert files[0].first_seen.date().isoformat() == "2026-11-28"


async def test_trace_from_the_journal(journal: Path) -> None:
    """The same message traced from the journal: sent and bounced recipients, and the bounce notice."""
    result = await _trace(journal, "from-mixed@example.net 2026-11-28")
    assert result.failures == ()
    mine = [m for m in result.messages if m.sender == "from-mixed@example.net"]
    assert len(mine) == 1
    states = {r.address: r.status for r in mine[0].recipients}
    assert states == {"mixed-ok@example.org": Status.SENT, "mixed-bad@example.org": Status.BOUNCED}
    assert any(m.sender == "" for m in result.messages)  # the bounce notice, traced by link
    assert all(line.startswith("2026-11-28T") for line in mine[0].lines)  # short-iso lines


async def test_day_outside_the_journal(journal: Path) -> None:
    """A day the journal does not cover searches nothing and says it was logged another day."""
    result = await _trace(journal, "from-mixed@example.net 2026-11-20")
    assert result.messages == ()
    assert result.other_days == ("2026-11-28",)
