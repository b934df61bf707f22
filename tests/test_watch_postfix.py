"""Follow-ups on a real Postfix: `mailtrace watch` and the Slack watch until the mail is done.

Instance A sends closed.test to a loopback port where nothing listens, so each mail is deferred
for real (with an hour's back-off, so Postfix does not retry by itself during a test); a test
then opens the port with a real SMTP sink and asks Postfix to retry, or deletes the mail.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.settings import ServerConfig, Settings, SlackConfig, WatchConfig
from bot.slack.audit import Outcome
from bot.slack.watching import CANCEL_ACTION, RETRY_ACTION, WATCH_ACTION
from bot.watch.store import WatchStore
from tests.postfix_live import Instance, running_pair, send, wait_for
from tests.smtpsink import smtp_sink
from tests.sshd import free_port
from tests.test_slack_app import (  # noqa: F401 (fixtures)
    CHANNEL,
    SIGNING_SECRET,
    USER,
    Bot,
    BotFactory,
    fake,
    make_bot,
)

pytestmark = [pytest.mark.postfix]

QUEUE_TIMES = "minimal_backoff_time = 1h\nmaximal_backoff_time = 2h\n"


@pytest.fixture(scope="module")
def postfix() -> Iterator[tuple[Instance, int]]:
    """Instance A, and the closed loopback port it sends closed.test to."""
    closed = free_port()
    with running_pair(f"closed.test=smtp:[127.0.0.1]:{closed}", QUEUE_TIMES) as (a, _b):
        yield a, closed


def deferred_mail(a: Instance, who: str) -> str:
    """Send one mail from watch-WHO@example.net to WHO@closed.test; its queue ID once deferred."""
    send(a.port, f"watch-{who}@example.net", [f"{who}@closed.test"], who)
    log = wait_for(a, f"to=<{who}@closed.test>")
    found = re.search(rf"(\w+): from=<watch-{who}@example\.net>", log)
    assert found is not None
    return found.group(1)


def config(a: Instance, tmp: Path, **extra: Any) -> Path:
    entry = {
        "name": "mx-a",
        "local": True,
        "logs": [f"{a.log_dir}/mail.log*"],
        "postfix_config_dir": str(a.etc),
    }
    path = tmp / "mailtrace.yaml"
    path.write_text(json.dumps({"timezone": "UTC", "servers": [entry], **extra}))
    return path


def postfix_cmd(a: Instance, *args: str) -> None:
    subprocess.run([*args[:1], "-c", str(a.etc), *args[1:]], check=True, capture_output=True)


class Background:
    """`mailtrace watch …` in a thread: its exit status and output once it ends."""

    def __init__(self, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
        self.status: int | None = None
        self.thread = threading.Thread(target=self._run, args=(argv,))
        self.capsys = capsys
        self.thread.start()

    def _run(self, argv: list[str]) -> None:
        self.status = main(argv)

    def result(self, timeout: float = 90) -> tuple[int | None, str]:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "mailtrace watch did not end"
        return self.status, self.capsys.readouterr().out


def test_cli_watch_reports_delivered_once_the_port_opens(
    postfix: tuple[Instance, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`mailtrace watch` waits on a deferred mail and exits 0 with "delivered" once it is."""
    a, closed = postfix
    qid = deferred_mail(a, "cli-ok")
    argv = ["watch", qid, "--server", "mx-a", "--config", str(config(a, tmp_path))]
    watch = Background([*argv, "--timeout", "80s"], capsys)
    with smtp_sink(closed) as sink:
        postfix_cmd(a, "postqueue", "-i", qid)
        status, out = watch.result()
    assert sink.received >= 1
    assert status == 0, out
    assert "cli-ok@closed.test — delivered" in out


def test_cli_watch_ends_with_deleted_after_postsuper(
    postfix: tuple[Instance, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mail removed with `postsuper -d` ends the watch with "deleted" and exit status 1."""
    a, _closed = postfix
    qid = deferred_mail(a, "cli-del")
    argv = ["watch", qid, "--server", "mx-a", "--config", str(config(a, tmp_path))]
    watch = Background([*argv, "--timeout", "80s"], capsys)
    postfix_cmd(a, "postsuper", "-d", qid)
    status, out = watch.result()
    assert status == 1, out
    assert "cli-del@closed.test — deleted" in out


def test_cli_watch_still_pending_at_the_timeout_exits_4(
    postfix: tuple[Instance, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mail still deferred when --timeout runs out is told as waiting, exit status 4."""
    a, _closed = postfix
    qid = deferred_mail(a, "cli-wait")
    status = main(
        ["watch", qid, "--server", "mx-a", "--config", str(config(a, tmp_path)), "--timeout", "3s"]
    )
    out = capsys.readouterr().out
    assert status == 4, out
    assert "cli-wait@closed.test — still waiting in the queue" in out
    assert "Connection refused" in out


def test_cli_watch_refuses_a_bad_duration_and_queue_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A malformed --timeout or queue ID is a usage error (2) that runs nothing."""
    with pytest.raises(SystemExit) as exc:
        main(["watch", "ABCDEF123", "--server", "mx-a", "--timeout", "ten minutes"])
    assert exc.value.code == 2
    assert main(["watch", "ABC;rm -rf /", "--server", "mx-a"]) == 2
    assert "not a queue ID" in capsys.readouterr().err


# ---------------------------------------------------------------------- Slack


async def press(bot: Bot, action: str, value: str, thread_ts: str, *, user: str = USER) -> int:
    """POST a signed block_actions request for one of the watch buttons in a thread."""
    name = f"press-{user}-{action}"
    return await bot.click(value, user=user, name=name, action_id=action, thread_ts=thread_ts)


def watch_buttons(bot: Bot) -> dict[str, str]:
    """The action IDs and values of the buttons in the bot's replies so far."""
    out: dict[str, str] = {}
    for call in bot.fake.calls_to("chat.postMessage"):
        for block in call.params.get("blocks") or []:
            if block.get("type") == "actions":
                out.update(
                    {
                        e["action_id"]: e["value"]
                        for e in block["elements"]
                        if e["action_id"].startswith("watch_")
                    }
                )
    return out


async def replies_saying(bot: Bot, words: str, timeout: float = 60) -> list[dict[str, Any]]:
    """Wait (bounded) until a thread reply contains `words`; those replies."""
    async with asyncio.timeout(timeout):
        while True:
            found = [
                c.params
                for c in bot.fake.calls_to("chat.postMessage")
                if words in str(c.params.get("text", ""))
            ]
            if found:
                return found
            await asyncio.sleep(0.2)


async def test_slack_watch_survives_a_restart_and_retry_now_ends_it_delivered(
    postfix: tuple[Instance, int],
    make_bot: BotFactory,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
) -> None:
    """Through the real Bolt app: the asker sets a watch, the bot restarts, a non-operator's
    "Retry now" is refused and audited, the operator's retries the mail to a now open port, and
    the thread gets one "delivered" reply mentioning the asker; the store keeps it as done."""
    a, closed = postfix
    qid = deferred_mail(a, "slack-ok")
    server = ServerConfig(
        name="mx-a", local=True, logs=(f"{a.log_dir}/mail.log*",), postfix_config_dir=str(a.etc)
    )
    settings = Settings(
        default_days=None,
        servers=(server,),
        slack=SlackConfig(operators=(USER,)),
        watch=WatchConfig(min_interval=0.5, max_interval=2),
    )
    first = await make_bot(settings)
    await first.command("watch-slack-ok@example.net")
    await first.audit.wait(1)
    buttons = watch_buttons(first)
    assert set(buttons) == {WATCH_ACTION, RETRY_ACTION}  # the asker is an operator
    _parent, replies = first.thread()
    thread_ts = replies[0]["thread_ts"]
    assert await press(first, WATCH_ACTION, buttons[WATCH_ACTION], thread_ts) == 200
    await replies_saying(first, "I'm watching 1 recipient")
    assert first.audit.entries[-1].outcome is Outcome.WATCH_STARTED
    await first.running.drain(3.0, 1.0)  # the bot stops: the watch stays in the SQLite file

    second = await make_bot(settings)  # same directory: the same watches.sqlite3
    assert await press(second, RETRY_ACTION, buttons[RETRY_ACTION], thread_ts, user="U2") == 200
    await second.audit.wait(1)
    refused = second.audit.entries[0]
    assert (refused.outcome, refused.user, refused.allowed) == (Outcome.REFUSED, "U2", False)
    with smtp_sink(closed) as sink:
        assert await press(second, RETRY_ACTION, buttons[RETRY_ACTION], thread_ts) == 200
        [done] = await replies_saying(second, "Done: every recipient was delivered.")
    assert sink.received >= 1
    assert done["thread_ts"] == thread_ts
    assert done["text"].startswith(f"<@{USER}> ")
    assert "slack-ok@closed.test — delivered" in done["text"]
    outcomes = [e.outcome for e in second.audit.entries]
    assert Outcome.RETRY_REQUESTED in outcomes
    assert Outcome.WATCH_DONE in outcomes
    assert WatchStore(tmp_path / "watches.sqlite3").active() == []  # nothing active any more
    assert qid in buttons[WATCH_ACTION]


async def test_slack_watch_ends_deleted_and_cancel_stops_another(
    postfix: tuple[Instance, int],
    make_bot: BotFactory,  # noqa: F811
) -> None:
    """A watched mail deleted with postsuper ends with "deleted"; a non-operator asker sees no
    "Retry now", and Cancel stops a watch for good."""
    a, _closed = postfix
    qid = deferred_mail(a, "slack-del")
    deferred_mail(a, "slack-cancel")
    server = ServerConfig(
        name="mx-a", local=True, logs=(f"{a.log_dir}/mail.log*",), postfix_config_dir=str(a.etc)
    )
    settings = Settings(
        default_days=None,
        servers=(server,),
        slack=SlackConfig(),
        watch=WatchConfig(min_interval=0.5, max_interval=2),
    )
    bot = await make_bot(settings)
    await bot.command("watch-slack-del@example.net")
    await bot.audit.wait(1)
    buttons = watch_buttons(bot)
    assert set(buttons) == {WATCH_ACTION}
    thread_ts = bot.thread()[1][0]["thread_ts"]
    await press(bot, WATCH_ACTION, buttons[WATCH_ACTION], thread_ts)
    await replies_saying(bot, "I'm watching 1 recipient")
    postfix_cmd(a, "postsuper", "-d", qid)
    [done] = await replies_saying(bot, "Done: every recipient has reached its end")
    assert "slack-del@closed.test — deleted" in done["text"]

    bot.fake.reset()
    await bot.command("watch-slack-cancel@example.net", name="r2")
    await bot.audit.wait(4)
    buttons = watch_buttons(bot)
    thread_ts = bot.thread()[1][0]["thread_ts"]
    await press(bot, WATCH_ACTION, buttons[WATCH_ACTION], thread_ts)
    await replies_saying(bot, "I'm watching 1 recipient")
    cancel = watch_buttons(bot)[CANCEL_ACTION]
    await press(bot, CANCEL_ACTION, cancel, thread_ts)
    await replies_saying(bot, f"Stopped watching (cancelled by <@{USER}>).")
    assert bot.audit.entries[-1].outcome is Outcome.WATCH_CANCELLED
