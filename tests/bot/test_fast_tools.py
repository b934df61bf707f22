"""The server's faster tools (ripgrep, pigz) give the very answers grep and gzip give."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.query import parse_query
from bot.render.jsonout import render_json
from bot.result import SearchResult
from bot.search import run_search
from bot.settings import Settings, load_settings
from bot.sources import commands, grep_commands
from bot.sources.source import LogSource
from bot.timings import Timings
from tests.recording import RecordingRunner
from tests.test_fixture_scenarios import DOC, _write_config

HOSTS = ["mx-a", "mx-b", "mx-rot", "mx-s/traditional"]
CAPTURES = {"two-hosts", "rotated"}
HAVE_TOOLS = all(shutil.which(tool) for tool in ("rg", "pigz", "zstd"))
needs_tools = pytest.mark.skipif(
    not HAVE_TOOLS and os.environ.get("CI") != "true",
    reason="ripgrep, pigz or zstd is not installed here (CI installs them)",
)


def _logs(root: Path) -> Settings:
    """The captured logs of HOSTS; the rotated capture's mail.log.1 as .zst (its mtime kept),
    so plain files, .gz and .zst are all searched."""
    config = _write_config(root, HOSTS)
    middle = root / "mx-rot" / "mail.log.1"
    stat = middle.stat()
    subprocess.run(["zstd", "-q", "--rm", str(middle)], check=True)
    os.utime(middle.with_name("mail.log.1.zst"), (stat.st_atime, stat.st_mtime))
    return load_settings(config)


def _sources(settings: Settings, tools: commands.Tools | None) -> list[LogSource]:
    sources = []
    for server in settings.servers:
        source = LogSource(server, RecordingRunner(server.name), settings.limits_for(server))
        source.tools = tools  # None: probed with the first listing
        sources.append(source)
    return sources


async def _answer(settings: Settings, sources: list[LogSource], text: str) -> str:
    now = datetime.now(UTC)
    result: SearchResult = await run_search(
        parse_query(text, now=now, zone=UTC), settings, sources, now=now
    )
    assert not result.failures
    return render_json(result.model_copy(update={"duration_s": 0.0, "timings": Timings()}))


def _sent(sources: list[LogSource]) -> str:
    return "\n".join(c for s in sources for c in s.runner.commands)  # type: ignore[attr-defined]


@needs_tools
async def test_answers_are_the_same_with_and_without_the_fast_tools(tmp_path: Path) -> None:
    """Every captured scenario (plain, .gz and .zst files) and a broad @domain query answer the
    same JSON whether the probe finds ripgrep and pigz (and they are used) or nothing."""
    settings = _logs(tmp_path)
    fast = _sources(settings, None)
    slow = _sources(settings, commands.NO_TOOLS)
    queries = [s["sender"] for s in DOC["scenarios"] if s["capture"] in CAPTURES]
    queries += ["@example.org", "@EXAMPLE.net"]
    found = 0
    for text in queries:
        with_tools = await _answer(settings, fast, text)
        assert with_tools == await _answer(settings, slow, text), text
        found += bool(json.loads(with_tools)["messages"])
    assert found == len(queries)  # each query finds something to compare
    assert all(s.tools == commands.Tools(rg=True, pigz=True, zstd=True) for s in fast)
    used, plain = _sent(fast), _sent(slow)
    assert grep_commands.RG in used
    assert "pigz -dc --" in used
    assert "zstd -dcq --" in used
    assert "zstd -dcq --" in plain
    assert grep_commands.RG not in plain
    assert "pigz" not in plain


@needs_tools
async def test_probe_is_part_of_the_first_listing_only(tmp_path: Path) -> None:
    """The tools are probed once per source, inside its first listing: no extra round trip."""
    settings = _logs(tmp_path)
    (source,) = [s for s in _sources(settings, None) if s.name == "mx-rot"]
    await _answer(settings, [source], "from-rot1@example.net")
    await _answer(settings, [source], "from-rot1@example.net")
    sent = source.runner.commands  # type: ignore[attr-defined]
    probe = "for t in rg pigz zstd"
    assert sum(probe in c for c in sent) == 1
    assert probe in sent[0]


def test_case_folding_beyond_ascii_stays_with_grep() -> None:
    """ripgrep folds case by Unicode and LC_ALL=C grep by ASCII: a non-ASCII pattern searched
    without case is grep's job even where ripgrep is installed."""
    tools = commands.Tools(rg=True)
    ascii_only = grep_commands.grep_command(
        ["/l/mail.log"], ["@example.org"], ignore_case=True, tools=tools
    )
    accented = grep_commands.grep_command(
        ["/l/mail.log"], ["@exämple.org"], ignore_case=True, tools=tools
    )
    assert grep_commands.RG in ascii_only
    assert grep_commands.RG not in accented
    assert "grep -F -a -H -i" in accented
