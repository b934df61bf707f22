"""Pass 2 in pass 1's command: on every real capture, the same answer with fewer commands."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.query import parse_query
from bot.render.jsonout import render_json
from bot.result import SearchResult
from bot.search import run_search
from bot.settings import Limits, Settings, load_settings
from bot.sources.runner import LocalRunner
from bot.sources.source import LogSource
from bot.timings import Timings
from tests.test_fixture_scenarios import CAPTURE_HOSTS, DOC, HOSTS, OWN_CONFIG, _write_config

NOW = datetime(2027, 1, 1, tzinfo=UTC)


class CountingRunner(LocalRunner):
    """The real local runner, counting the commands it ran."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.commands = 0

    async def batches(self, command: str) -> AsyncIterator[list[str]]:
        self.commands += 1
        async for batch in super().batches(command):
            yield batch


def _sources(settings: Settings) -> list[LogSource]:
    return [
        LogSource(server, CountingRunner(server.name), settings.limits_for(server))
        for server in settings.servers
    ]


async def _answers(settings: Settings, question: str) -> tuple[list[str], int]:
    """The JSON of a cold and of a warm answer (the same sources asked twice), less their
    timings, and how many commands both took (which their timings count too)."""
    sources = _sources(settings)
    query = parse_query(question, now=NOW, zone=UTC)
    answers: list[SearchResult] = []
    for _ in range(2):
        answers.append(await run_search(query, settings, sources, now=NOW))
    count = sum(s.runner.commands for s in sources if isinstance(s.runner, CountingRunner))
    assert sum(s.commands for a in answers for s in a.timings.servers) == count
    blank = {"duration_s": 0.0, "timings": Timings()}
    return [render_json(a.model_copy(update=blank)) for a in answers], count


@pytest.fixture(scope="module")
def capture_settings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Settings]:
    """Each capture's servers, configured as the fixture scenarios configure them."""
    out = {}
    for capture, hosts in CAPTURE_HOSTS.items():
        shared = capture not in OWN_CONFIG
        wanted = [h for c, hs in CAPTURE_HOSTS.items() if c not in OWN_CONFIG for h in hs]
        path = _write_config(tmp_path_factory.mktemp(capture), wanted if shared else hosts)
        out[capture] = load_settings(path)
    return out


def _without_ahead(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"limits": Limits(**{**settings.limits.model_dump(), "pass2_ahead_mb": 0})}
    )


@pytest.mark.parametrize("scenario", DOC["scenarios"], ids=[s["name"] for s in DOC["scenarios"]])
async def test_same_answer_with_pass2_in_pass1s_command(
    scenario: dict[str, Any], capture_settings: dict[str, Settings]
) -> None:
    """Asked for a scenario's sender, cold and warm, the JSON is the same whether pass 2 rides
    in pass 1's command or runs on its own, and riding saves commands where a message was
    queued (a refusal before the queue has no pass 2)."""
    settings = capture_settings[scenario["capture"]]
    servers = ",".join(HOSTS[h][0] for h in CAPTURE_HOSTS[scenario["capture"]])
    question = f"{scenario['sender']} on {servers}"
    ahead, ahead_commands = await _answers(settings, question)
    alone, alone_commands = await _answers(_without_ahead(settings), question)
    assert ahead == alone
    assert '"messages": []' not in ahead[0]
    if scenario.get("queue_ids"):
        assert ahead_commands < alone_commands
    else:
        assert ahead_commands == alone_commands


async def test_queue_id_query_same_answer(capture_settings: dict[str, Settings]) -> None:
    """A queue ID query (pass 1's needle is the ID itself) answers the same either way."""
    settings = capture_settings["two-hosts"]
    scenario = next(s for s in DOC["scenarios"] if s["capture"] == "two-hosts" and s["queue_ids"])
    qid = next(iter(scenario["queue_ids"].values()))[0]
    ahead, _ = await _answers(settings, qid)
    alone, _ = await _answers(_without_ahead(settings), qid)
    assert ahead == alone
    assert qid in ahead[1]


async def test_broad_query_past_the_id_cap_answers_the_same(tmp_path: Path) -> None:
    """When pass 1 names more queue IDs than pass 2 may take in its command (a broad query),
    pass 2 runs on its own and the answer is the one without riding."""
    lines = []
    for n in range(40):
        qid = f"AB{n:04X}C"
        lines.append(
            f"May 13 10:00:{n % 60:02d} mx postfix/qmgr[2]: {qid}: from=<u{n}@example.net>, "
            "size=10, nrcpt=1 (queue active)\n"
            f"May 13 10:00:{n % 60:02d} mx postfix/qmgr[2]: {qid}: removed\n"
        )
    log = tmp_path / "mail.log"
    log.write_text("".join(lines))
    stamp = datetime(2026, 5, 13, 23, tzinfo=UTC).timestamp()
    os.utime(log, (stamp, stamp))
    (tmp_path / "c.yaml").write_text(
        "default_days: null\nlimits: {max_messages: 5}\n"
        f"servers: [{{name: mx, local: true, logs: ['{log}']}}]\n"
    )
    settings = load_settings(tmp_path / "c.yaml")
    ahead, ahead_commands = await _answers(settings, "@example.net 2026-05-13")
    alone, alone_commands = await _answers(_without_ahead(settings), "@example.net 2026-05-13")
    assert ahead == alone
    assert ahead_commands == alone_commands  # 40 IDs > 2 x 5: no ride, no saving
