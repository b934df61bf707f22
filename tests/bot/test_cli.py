"""The command line on local files: the how-to example, JSON output, usage errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from bot.cli import main
from tests.conftest import HOWTO


def test_howto_example_shows_delivery(capsys: pytest.CaptureFixture[str]) -> None:
    """The how-to's five lines (queue ID BCDEFGHIJKL) answer: sent to recipient2 via virtual."""
    status = main(
        ["trace", "sender2@example.net", "2024-05-13", "--log", str(HOWTO), "--year", "2024"]
    )
    out = capsys.readouterr().out
    assert status == 0
    assert "✅ Delivered · sender2@example.net → recipient2@example.org" in out
    assert "✅ recipient2@example.org — delivered to the mailbox on local" in out
    assert "Queue IDs: local BCDEFGHIJKL" in out


def test_howto_example_as_json(howto_log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--format json gives one document with the message, its recipient and what was searched."""
    status = main(
        ["trace", "sender2@example.net", "2024-05-13", "--log", str(howto_log), "--format", "json"]
    )
    doc = json.loads(capsys.readouterr().out)
    assert status == 0
    (message,) = doc["messages"]
    assert message["queue_id"] == "BCDEFGHIJKL"
    assert message["status"] == "sent"
    assert message["sender"] == "sender2@example.net"
    assert message["message_id"] == "20240513100011.1234@example.net"
    assert message["first_seen"].startswith("2024-05-13T10:00:11")
    (rcpt,) = message["recipients"]
    assert rcpt["address"] == "recipient2@example.org"
    assert rcpt["reason"] == "delivered via virtual service"
    assert rcpt["relay"] == "virtual"
    assert doc["searched"][0]["files"][0]["path"] == str(howto_log)
    assert doc["diagnosis"] == []


def test_nothing_found_gives_a_diagnosis(
    howto_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An address on the wrong day: exit 1, and the diagnosis names the day it was logged."""
    status = main(
        ["trace", "sender2@example.net", "2024-05-14", "--log", str(howto_log), "--format", "json"]
    )
    doc = json.loads(capsys.readouterr().out)
    assert status == 1
    assert doc["messages"] == []
    assert doc["other_days"] == ["2024-05-13"]
    causes = [d["cause"] for d in doc["diagnosis"]]
    assert "It was logged, but on other days than the one asked about." in causes


def test_usage_error_exit_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    """Bad input is a clear usage error on stderr with exit status 2."""
    status = main(["trace", "not-an-address;", "--log", str(HOWTO)])
    err = capsys.readouterr().err
    assert status == 2
    assert "is not an address" in err
    assert err.count("\n") == 1  # one line, with at most one example
    assert err.count("/mailtrace ") == 1


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["trace"],
        ["bogus"],
        ["trace", "--log", str(HOWTO)],
        ["trace", "what", "happened", "--log", str(HOWTO)],
        ["trace", "a@example.org", "2024-05-01", "2024-05-02", "--log", str(HOWTO)],
        ["trace", "a@example.org", "2024-05-13..2024-05-01", "--log", str(HOWTO)],
        ["trace", "a@example.org", "2024-05-01..2024-05-03", "10:00", "--log", str(HOWTO)],
        ["trace", "a@example.org", "25:00", "--log", str(HOWTO)],
        ["trace", "a@example.org", "on", "mx9", "--log", str(HOWTO)],
        ["trace", "a@example.org\n2024-05-13", "--log", str(HOWTO)],
        ["trace", "a@example.org", "--year", "1", "--log", str(HOWTO)],
        ["trace", "a@example.org", "--format", "xml", "--log", str(HOWTO)],
    ],
)
def test_every_usage_error_is_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Whatever is wrong with the command line or the query, the complaint is one line on
    stderr (with at most one example), exit status 2, never the whole usage text."""
    status: object
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse's own errors
        status = exc.code
    captured = capsys.readouterr()
    assert status == 2
    assert captured.out == ""
    assert captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith("mailtrace")
    assert captured.err.count("/mailtrace ") <= 1
    assert "Usage" not in captured.err
    assert "usage:" not in captured.err
    assert "Examples:" not in captured.err


def test_future_date_is_nothing_found_without_guesses(
    howto_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A day after the newest log: exit 1, 'no logs yet' and the day it was logged, in text;
    no 'never reached' (nothing was read for that day)."""
    status = main(["trace", "sender2@example.net", "2024-06-01", "--log", str(howto_log)])
    out = capsys.readouterr().out
    assert status == 1
    assert out.splitlines()[0] == "sender2@example.net on 2024-06-01: nothing found"
    assert "1. It was logged, but on other days than the one asked about." in out
    assert "2. local has no logs yet for that time." in out
    assert "never reached" not in out


def test_unreadable_everything_is_couldnt_search(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing could be read (the only log glob matches nothing): exit 3, the headline says
    'couldn't search', the JSON codes hold no guess about the mail, the next step is about
    the --log path (`mailtrace doctor` checks configured servers, not these files), and no
    empty "0 of 0 log files" coverage line stands beside the problem line that says why."""
    status = main(["trace", "a@example.org", "--log", f"{tmp_path}/none*", "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert status == 3
    assert [d["code"] for d in doc["diagnosis"]] == ["servers_failed"]
    assert doc["diagnosis"][0]["next_step"].startswith("Check the path given with --log")
    status = main(["trace", "a@example.org", "--log", f"{tmp_path}/none*"])
    out = capsys.readouterr().out
    assert status == 3
    assert out.startswith("a@example.org: couldn't search (local could not be searched)\n")
    assert "   next: Check the path given with --log" in out
    assert "log files searched" not in out
    assert f"⚠️ local: no log files: nothing matches {tmp_path}/none*" in out
    assert "doctor" not in out
    assert "nothing found" not in out
    assert "never reached" not in out


def test_unreadable_log_file_names_permissions_not_doctor() -> None:
    """`--log` on a file the user cannot read (root's 0600 file, read as `nobody`): exit 3, the
    next step is about reading the file, and `mailtrace doctor` is not suggested."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run the CLI as another user")
    as_nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    probe = subprocess.run([*as_nobody, sys.executable, "-c", "import bot.cli"], check=False)
    if probe.returncode != 0:
        pytest.skip("`nobody` cannot run this checkout's Python (a private directory)")
    shared = Path(tempfile.mkdtemp(prefix="mailtrace-cli-"))  # pytest's tmp dirs are private
    try:
        shared.chmod(0o755)
        log = shared / "mail.log"
        shutil.copyfile(HOWTO, log)
        log.chmod(0o600)
        command = ["trace", "a@example.org", "--log", str(log)]
        done = subprocess.run(
            [*as_nobody, sys.executable, "-m", "bot.cli", *command],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        shutil.rmtree(shared)
    assert done.returncode == 3, done.stderr
    assert done.stdout.startswith("a@example.org: couldn't search (1 log file could not be read)")
    assert "   next: Run as a user who can read the file" in done.stdout
    assert "doctor" not in done.stdout


def test_console_script_help() -> None:
    """`mailtrace trace --help` explains the query grammar."""
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "trace", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "TARGET [DATE] [TIME] [on SERVER]" in done.stdout


def test_help_does_not_load_the_search() -> None:
    """`mailtrace trace --help` loads the grammar's words only: not the query parser, pydantic,
    Babel, the search, the settings, the renderers, SSH or Slack (most of the start-up time)."""
    probe = (
        "import sys\n"
        "from bot.cli import main\n"
        "try:\n"
        "    main(['trace', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ['bot.search', 'bot.settings', 'bot.render.text', 'asyncssh', 'slack_bolt', 'yaml',\n"
        "         'bot.query', 'pydantic', 'babel', 'parsers.postfix']\n"
        "print(' '.join(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "usage: mailtrace trace" in done.stdout
    assert done.stderr.strip() == ""


def test_local_trace_loads_no_ssh_slack_yaml_or_babel() -> None:
    """`mailtrace trace --log` answers from the file without importing asyncssh, Slack, YAML or
    Babel (the interpreter's own import log of the real command is read)."""
    query = ["sender2@example.net", "2024-05-13", "--log", str(HOWTO), "--year", "2024"]
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "bot.cli", "trace", *query, "--lang", "en"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "✅ Delivered · sender2@example.net → recipient2@example.org" in done.stdout
    imported = {
        line.rpartition("|")[2].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "bot.search" in imported  # the log is the real command's
    tops = {name.partition(".")[0] for name in imported}
    assert tops.isdisjoint({"asyncssh", "slack_bolt", "slack_sdk", "yaml", "babel"})
