"""Empty answers made real: a stopped server and a log file the SSH login user cannot read
(real sshd, an unprivileged login, captured Postfix logs), through the CLI text, the JSON
codes and the Slack thread. What must not be said is asserted too."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from bot.cli import main
from bot.settings import ServerConfig, SlackConfig
from bot.slack.audit import Outcome
from bot.sources.factory import build_sources
from bot.sources.ssh import SSHPool
from tests.sshd import SshCluster, free_port
from tests.test_slack_app import BotFactory, text_of
from tests.test_slack_app import fake as fake
from tests.test_slack_app import make_bot as make_bot

pytestmark = pytest.mark.sshd

TWO_HOSTS = Path(__file__).resolve().parent / "fixtures" / "postfix" / "two-hosts"
CAPTURE_END = 1795885200.0  # 2026-11-28 17:00 UTC: after the capture's last line


@pytest.fixture
def half_readable(sshd_cluster: SshCluster) -> Path:
    """mx-a's captured log readable by anyone (mail.log), mx-b's by root only (mail.log.1)."""
    if sshd_cluster.test_user is None:
        pytest.skip("no unprivileged test user (needs root and useradd)")
    directory = sshd_cluster.root / "logs" / f"empty-answers-{os.getpid()}"
    directory.mkdir(exist_ok=True)
    directory.chmod(0o755)
    for source, target, mode in (("mx-a", "mail.log", 0o644), ("mx-b", "mail.log.1", 0o600)):
        path = directory / target
        shutil.copyfile(TWO_HOSTS / source / "mail.log", path)
        path.chmod(mode)
        os.utime(path, (CAPTURE_END, CAPTURE_END))
    return directory


def config_file(tmp_path: Path, *servers: ServerConfig) -> Path:
    data = {
        "timezone": "UTC",
        "servers": [s.model_dump(mode="json", exclude_none=True) for s in servers],
        "limits": {"connect_timeout": 5, "command_timeout": 30},
    }
    path = tmp_path / "mailtrace.yaml"
    path.write_text(json.dumps(data))  # JSON is YAML
    return path


def mx1(cluster: SshCluster, logs: str) -> ServerConfig:
    """mx1 logged in to as the unprivileged test user, reading `logs`, yearless lines of 2026."""
    assert cluster.test_user is not None
    return cluster.server_config("mx1", user=cluster.test_user, logs=(logs,), year=2026)


def stopped(cluster: SshCluster) -> ServerConfig:
    """A server whose sshd is not running: nothing listens on its port."""
    return cluster.server_config("mx-stopped", server="mx2", port=free_port())


def test_stopped_server_and_unreadable_file_are_said_and_nothing_is_guessed(
    sshd_cluster: SshCluster,
    half_readable: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Some of the logs read: exit 1, the headline says the answer is incomplete, the first
    causes are the stopped server and the unreadable file, and 'never reached' is not said."""
    config = config_file(
        tmp_path, mx1(sshd_cluster, f"{half_readable}/mail.log*"), stopped(sshd_cluster)
    )
    query = ["trace", "nobody@example.net", "2026-11-28", "--config", str(config)]
    status = main([*query, "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert status == 1, doc["failures"]
    codes = [d["code"] for d in doc["diagnosis"]]
    assert codes[:2] == ["servers_failed", "files_unreadable"]
    assert "never_reached" not in codes
    assert "similar_address" not in codes
    failed, unreadable = doc["diagnosis"][:2]
    (evidence,) = failed["evidence"]
    assert evidence.startswith("mx-stopped: unreachable: ")
    assert unreadable["evidence"] == [f"mx1: {half_readable}/mail.log.1"]
    assert "adm" in unreadable["next_step"]

    status = main(query)
    out = capsys.readouterr().out
    assert status == 1
    assert out.splitlines()[0] == (
        "nobody@example.net on 2026-11-28: nothing found in what could be read "
        "(mx-stopped could not be searched; 1 log file could not be read)"
    )
    assert "mx1: 1 of 2 log files searched" in out
    assert "never reached" not in out


def test_nothing_readable_is_couldnt_search(
    sshd_cluster: SshCluster,
    half_readable: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every file unreadable (the login user not in `adm`): exit 3, 'couldn't search', one
    cause, and no claim about the mail."""
    config = config_file(tmp_path, mx1(sshd_cluster, f"{half_readable}/mail.log.1"))
    status = main(["trace", "from-relay@example.net", "--config", str(config)])
    out = capsys.readouterr().out
    assert status == 3
    assert out.splitlines()[0] == (
        "from-relay@example.net: couldn't search (1 log file could not be read)"
    )
    assert "1. 1 log file on mx1 could not be read (permission denied)" in out
    assert "2." not in out
    assert "nothing found" not in out
    assert "never reached" not in out
    assert "No date given: searched the last 7 days." in out


async def test_slack_thread_names_the_contact_not_operator_commands(
    sshd_cluster: SshCluster, half_readable: Path, make_bot: BotFactory
) -> None:
    """In Slack the same causes come in the thread, but the next step names the configured
    contact, and neither `mailtrace doctor` nor connection details are shown."""
    servers = (mx1(sshd_cluster, f"{half_readable}/mail.log*"), stopped(sshd_cluster))
    settings = sshd_cluster.settings(*servers).model_copy(
        update={"default_days": None, "slack": SlackConfig(contact="the mail team in #mail-ops")}
    )
    pool = SSHPool(settings)
    sources = build_sources(settings, pool)
    try:
        bot = await make_bot(settings, lambda: sources)
        await bot.command("nobody@example.net 2026-11-28")
        [entry] = await bot.audit.wait(1, timeout=60)
    finally:
        await pool.close()
    assert entry.outcome is Outcome.INCOMPLETE
    assert entry.reason == "mx-stopped: unreachable; mx1: 1 log file unreadable"
    parent, replies = bot.thread()
    assert "nothing found in what could be read" in text_of(parent)
    thread = "\n".join(text_of(r) for r in replies)
    assert "1. mx-stopped could not be searched" in thread
    assert "evidence: mx-stopped: unreachable\n" in thread
    assert "2. 1 log file on mx1 could not be read" in thread
    assert "Ask the mail team in #mail-ops to check the servers above" in thread
    assert "doctor" not in thread
    assert "never reached" not in thread


async def test_slack_nothing_readable_is_couldnt_search_in_thread_and_audit(
    sshd_cluster: SshCluster, half_readable: Path, make_bot: BotFactory
) -> None:
    """Every file unreadable (no server failed): the Slack headline says "couldn't search" and
    the audit entry is `couldnt_search` naming the unreadable file, never `nothing_found`."""
    settings = sshd_cluster.settings(mx1(sshd_cluster, f"{half_readable}/mail.log.1"))
    settings = settings.model_copy(update={"default_days": None, "slack": SlackConfig()})
    pool = SSHPool(settings)
    sources = build_sources(settings, pool)
    try:
        bot = await make_bot(settings, lambda: sources)
        await bot.command("nobody@example.net 2026-11-28")
        [entry] = await bot.audit.wait(1, timeout=60)
    finally:
        await pool.close()
    assert entry.outcome is Outcome.COULDNT_SEARCH
    assert entry.reason == "mx1: 1 log file unreadable"
    parent, replies = bot.thread()
    assert "couldn't search" in text_of(parent)
    thread = "\n".join(text_of(r) for r in replies)
    assert "nothing found" not in text_of(parent) + thread
    assert "never reached" not in thread
