"""The live queue on a real Postfix: a mail deferred to a closed port, one on hold, one deleted.

Instance A sends closed.test to a loopback port where nothing listens, so its mail is deferred
for real and stays in A's queue; A's main.cf sets queue times unlike the defaults and unlike the
configured `queue_lifetime`, so the test sees postconf's values win.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.cli.commands import trace
from bot.live_queue import check_live_queues
from bot.settings import ServerConfig, Settings, SlackConfig, load_settings
from bot.slack.audit import Outcome
from bot.sources import queue_commands
from bot.sources.factory import build_sources
from bot.sources.runner import LocalRunner
from parsers.queue import parse_postqueue_json, parse_postqueue_text
from tests.postfix_live import Instance, running_pair, send, wait_for
from tests.sshd import SshCluster, free_port
from tests.test_slack_app import BotFactory, fake, make_bot, text_of  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.postfix]

QUEUE_TIMES = "maximal_queue_lifetime = 2h\nminimal_backoff_time = 1h\nmaximal_backoff_time = 2h\n"


@pytest.fixture(scope="module")
def queued() -> Iterator[tuple[Instance, dict[str, str]]]:
    """Instance A with a deferred, a held and a soon-deleted mail in its queue (by sender)."""
    closed = free_port()
    with running_pair(f"closed.test=smtp:[127.0.0.1]:{closed}", QUEUE_TIMES) as (a, _b):
        ids: dict[str, str] = {}
        for who in ("deferred", "held", "gone"):
            send(a.port, f"live-{who}@example.net", [f"{who}@closed.test"], who)
        log = wait_for(a, *(f"to=<{w}@closed.test>" for w in ("deferred", "held", "gone")))
        for who in ("deferred", "held", "gone"):
            found = re.search(rf"(\w+): from=<live-{who}@example\.net>", log)
            assert found is not None
            ids[who] = found.group(1)
        _postsuper(a, "-h", ids["held"])
        wait_for(a, f"{ids['held']}: placed on hold")
        yield a, ids


def _postsuper(a: Instance, flag: str, queue_id: str) -> None:
    subprocess.run(["postsuper", "-c", str(a.etc), flag, queue_id], check=True, capture_output=True)


def _config(a: Instance, tmp: Path, **server: Any) -> Path:
    entry = {
        "name": "mx-a",
        "local": True,
        "logs": [f"{a.log_dir}/mail.log*"],
        "postfix_config_dir": str(a.etc),
        **server,
    }
    path = tmp / "mailtrace.yaml"
    path.write_text(json.dumps({"timezone": "UTC", "servers": [entry]}))
    return path


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    status = main(["trace", *args, "--format", "json"])
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert status == 0, doc
    return doc


def _message(doc: dict[str, Any], queue_id: str) -> dict[str, Any]:
    return next(m for m in doc["messages"] if m["queue_id"] == queue_id)


def _deferred_at(a: Instance, queue_id: str) -> datetime:
    """The time of the message's last deferral in A's log (second precision, UTC)."""
    stamps = re.findall(
        rf"^(\w{{3}} \d\d \d\d:\d\d:\d\d) .*{queue_id}: .*status=deferred", a.log_text(), re.M
    )
    year = datetime.now(UTC).year
    return datetime.strptime(f"{year} {stamps[-1]}", "%Y %b %d %H:%M:%S").replace(tzinfo=UTC)


def test_deferred_mail_is_in_the_deferred_queue_with_the_servers_give_up_time(
    queued: tuple[Instance, dict[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--queue adds the deferred queue, its reason, arrival and postconf's give-up time."""
    a, ids = queued
    doc = _json(
        capsys, "live-deferred@example.net", "--config", str(_config(a, tmp_path)), "--queue"
    )
    queue = _message(doc, ids["deferred"])["queue"]
    assert queue["queue_name"] == "deferred"
    assert queue["recipients"][0]["address"] == "deferred@closed.test"
    assert queue["recipients"][0]["delay_reason"].endswith("Connection refused")
    arrival = datetime.fromisoformat(queue["arrival_time"])
    # maximal_queue_lifetime = 2h from postconf, not the configured queue_lifetime (5d)
    assert datetime.fromisoformat(queue["gives_up_at"]) == arrival + timedelta(hours=2)
    outcome = doc["journeys"][0]["recipients"][0]
    assert outcome["gives_up_at"] == queue["gives_up_at"]
    # its first attempt failed at once: the wait is minimal_backoff_time (1h)
    last = _deferred_at(a, ids["deferred"])
    assert datetime.fromisoformat(queue["next_retry_estimate"]) == last + timedelta(hours=1)
    assert queue["checked_at"].endswith("+00:00")


def test_text_answer_tells_the_live_queue(
    queued: tuple[Instance, dict[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The terminal answer says which queue, the queue's reason, the next try and the end."""
    a, _ids = queued
    status = main(
        ["trace", "live-deferred@example.net", "--config", str(_config(a, tmp_path)), "--queue"]
    )
    out = capsys.readouterr().out
    assert status == 0, out
    assert "Still in mx-a's deferred queue since" in out
    assert "The queue says" not in out  # the same words as the log's, which are shown
    assert "Next try expected around" in out
    assert "(queue lifetime of mx-a)" in out


def test_held_mail_is_in_the_hold_queue(
    queued: tuple[Instance, dict[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mail placed on hold is shown in the hold queue, with no retry and no give-up time, and
    the queue's own reason where the logs say something else."""
    a, ids = queued
    doc = _json(capsys, "live-held@example.net", "--config", str(_config(a, tmp_path)), "--queue")
    queue = _message(doc, ids["held"])["queue"]
    assert queue["queue_name"] == "hold"
    assert queue["next_retry_estimate"] is None
    assert queue["gives_up_at"] is None
    status = main(
        ["trace", "live-held@example.net", "--config", str(_config(a, tmp_path)), "--queue"]
    )
    out = capsys.readouterr().out
    assert status == 0, out
    assert "In mx-a's hold queue since" in out
    # the log says "placed on hold"; the queue still knows why it was waiting
    assert "The queue says: “connect to 127.0.0.1[127.0.0.1]:" in out


def test_no_live_check_without_the_flag_or_with_queue_off(
    queued: tuple[Instance, dict[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --queue, or for a server with `queue: false`, `queue` stays null."""
    a, ids = queued
    plain = _json(capsys, "live-deferred@example.net", "--config", str(_config(a, tmp_path)))
    assert _message(plain, ids["deferred"])["queue"] is None
    off = _config(a, tmp_path, queue=False)
    doc = _json(capsys, "live-deferred@example.net", "--config", str(off), "--queue")
    assert _message(doc, ids["deferred"])["queue"] is None
    assert doc["notes"] == []


def test_text_listing_of_the_real_queue_reads_like_the_json_listing(
    queued: tuple[Instance, dict[str, str]],
) -> None:
    """The `postqueue -p` fallback, run for real, finds the same entries as `postqueue -j`."""
    a, ids = queued
    wanted = [ids["deferred"], ids["held"]]

    async def run(command: str) -> list[str]:
        return [line async for line in LocalRunner("mx-a").stream(command)]

    json_lines = asyncio.run(run(queue_commands.live_command(wanted, str(a.etc))))
    text_lines = asyncio.run(run(queue_commands.text_queue_command(wanted, str(a.etc))))
    from_json = parse_postqueue_json(json_lines)
    from_text = parse_postqueue_text(text_lines, UTC, datetime.now(UTC))
    assert sorted(e.queue_id for e in from_json) == sorted(wanted)
    assert from_text == from_json
    assert f"{queue_commands.TEXT_STATUS_PREFIX}0" in text_lines


def test_mail_deleted_after_the_search_is_gone_from_the_queue(
    queued: tuple[Instance, dict[str, str]], tmp_path: Path
) -> None:
    """A mail removed between the log search and the queue check is told as gone."""
    a, ids = queued
    settings = load_settings(_config(a, tmp_path))
    now = datetime.now(UTC)
    result = asyncio.run(trace(settings, "live-gone@example.net", UTC, now))
    assert result.journeys[0].recipients[0].status.value == "deferred"
    _postsuper(a, "-d", ids["gone"])
    wait_for(a, f"{ids['gone']}: removed")
    checked = asyncio.run(check_live_queues(result, settings, build_sources(settings)))
    assert [(s.queue_id, s.queue_name) for s in checked.live] == [(ids["gone"], None)]
    from bot.render.text import render_text

    assert "Not in mx-a's queue any more" in render_text(checked, UTC)


def test_unreadable_queue_is_a_note_and_the_log_answer_stays(
    queued: tuple[Instance, dict[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A queue that cannot be read (no such Postfix configuration) is one note, no queue state."""
    a, ids = queued
    config = _config(a, tmp_path, postfix_config_dir=str(tmp_path / "no-postfix-here"))
    doc = _json(capsys, "live-deferred@example.net", "--config", str(config), "--queue")
    assert _message(doc, ids["deferred"])["queue"] is None
    assert doc["journeys"][0]["recipients"][0]["status"] == "deferred"
    [note] = doc["notes"]
    assert note.startswith("mx-a: the live queue could not be read (postqueue: fatal:")


@pytest.mark.sshd
def test_live_queue_over_ssh(
    queued: tuple[Instance, dict[str, str]],
    sshd_cluster: SshCluster,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Over SSH the queue is read with the same quoted, timeout-wrapped command."""
    a, ids = queued
    server = sshd_cluster.server_config(
        "mx-a", server="mx1", logs=(f"{a.log_dir}/mail.log*",), postfix_config_dir=str(a.etc)
    )
    path = tmp_path / "ssh.yaml"
    path.write_text(json.dumps({"servers": [server.model_dump(mode="json", exclude_none=True)]}))
    doc = _json(capsys, "live-deferred@example.net", "--config", str(path), "--queue")
    assert doc["failures"] == []
    assert _message(doc, ids["deferred"])["queue"]["queue_name"] == "deferred"
    sent = [c for c in sshd_cluster["mx1"].recorded() if "postqueue" in c]
    assert sent
    assert sent[-1].startswith("exec env LC_ALL=C timeout ")
    assert f"postqueue -c {a.etc} -j" in sent[-1]


async def test_slack_thread_tells_the_live_queue(
    queued: tuple[Instance, dict[str, str]],
    make_bot: BotFactory,  # noqa: F811 (the fixture imported above)
) -> None:
    """Through the real Bolt app, the reply about a deferred mail says it is still queued."""
    a, _ids = queued
    server = ServerConfig(
        name="mx-a", local=True, logs=(f"{a.log_dir}/mail.log*",), postfix_config_dir=str(a.etc)
    )
    bot = await make_bot(Settings(default_days=None, servers=(server,), slack=SlackConfig()))
    await bot.command("live-deferred@example.net")
    [entry] = await bot.audit.wait(1)
    assert entry.outcome is Outcome.ANSWERED
    _parent, replies = bot.thread()
    [reply, offer] = [text_of(r) for r in replies]  # the story, then the watch's offer
    assert "Still in mx-a's deferred queue since" in reply
    assert "1 recipient is not final yet" in offer
    assert "Connection refused" in reply
