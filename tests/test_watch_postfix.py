"""Follow-ups on a real Postfix: `mailtrace watch` and the Slack watch until the mail is done.

Instance A sends closed.test to a loopback port where nothing listens, so each mail is deferred
for real (with an hour's back-off, so Postfix does not retry by itself during a test); a test
then opens the port with a real SMTP sink and asks Postfix to retry, or deletes the mail.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from tests.postfix_live import Instance, running_pair, send, wait_for
from tests.smtpsink import smtp_sink
from tests.sshd import free_port

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
