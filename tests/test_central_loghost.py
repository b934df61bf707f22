"""A central log host: one file with several real Postfix servers' lines, as rsyslog writes it.

The file is built from the real next-hops capture (mx1 relays to mx2 and mx3): the three
servers' lines merged in time order, as a log host receiving them over syslog would store
them. Each line keeps its own syslog HOSTNAME; the answer must name mx1, mx2 and mx3, never the
log host, and follow the hops between them inside that one file.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.cli import main

CAPTURE = Path(__file__).resolve().parent / "fixtures" / "postfix" / "next-hops"
LAST_WRITE = datetime(2026, 11, 30, 9, 30, tzinfo=UTC).timestamp()


@pytest.fixture
def central_log(tmp_path: Path) -> Path:
    """The three servers' real lines in one file, in time order (stable within a second)."""
    lines = [
        line
        for host in ("mx1", "mx2", "mx3")
        for line in (CAPTURE / host / "mail.log").read_text(encoding="utf-8").splitlines()
    ]
    lines.sort(key=lambda line: line[:15])  # "Nov 30 09:00:12": one day, so text order is time
    path = tmp_path / "mail.log"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.utime(path, (LAST_WRITE, LAST_WRITE))
    return path


def _config(tmp_path: Path, log: Path, **extra: Any) -> Path:
    server = {"name": "loghost", "local": True, "logs": [str(log)], "year": 2026, **extra}
    path = tmp_path / "mailtrace.yaml"
    path.write_text(yaml.safe_dump({"default_days": None, "servers": [server]}), encoding="utf-8")
    return path


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main(["trace", *argv, "--format", "json"]) == 0
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    return doc


ALIASES = {"mx2": ["127.0.0.1:12538"], "mx3": ["127.0.0.1:12539"]}


def test_each_line_belongs_to_its_syslog_host_and_hops_are_followed_in_the_file(
    tmp_path: Path, central_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One mail relayed by mx1 to mx2 and mx3, all in the log host's one file: one journey,
    each recipient ending on its own next hop, every message named by the host that logged it."""
    config = _config(tmp_path, central_log, central=True, host_aliases=ALIASES)
    doc = _json(capsys, "from-split@example.net", "--config", str(config))
    [journey] = doc["journeys"]
    ends = {r["address"]: (r["status"], r["host"], tuple(r["road"])) for r in journey["recipients"]}
    assert ends == {
        "split-org@example.org": ("sent", "mx2", ("mx1", "mx2", "mailbox")),
        "split-com@example.com": ("sent", "mx3", ("mx1", "mx3", "mailbox")),
    }
    assert {m["host"] for m in doc["messages"]} == {"mx1", "mx2", "mx3"}
    assert [m["host"] for m in journey["messages"]] == ["mx1", "mx2", "mx3"]


def test_a_next_hops_queue_id_finds_the_mail_it_came_from(
    tmp_path: Path, central_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Asked for mx2's queue ID of the greylisted mail, the log host's file gives the whole
    journey back to mx1, with mx1's extra attempt and mx2's try-later as the hold-up."""
    config = _config(tmp_path, central_log, central=True, host_aliases=ALIASES)
    first = _json(capsys, "from-greylist@example.net", "--config", str(config))
    mx2_id = next(m["queue_id"] for m in first["messages"] if m["host"] == "mx2" and m["queue_id"])
    doc = _json(capsys, mx2_id, "--config", str(config))
    [journey] = doc["journeys"]
    assert journey["sender"] == "from-greylist@example.net"
    [rcpt] = journey["recipients"]
    assert (rcpt["status"], rcpt["host"], rcpt["road"]) == (
        "sent",
        "mx2",
        ["mx1", "mx2", "mailbox"],
    )
    [hold_up] = rcpt["hold_ups"]
    assert hold_up.startswith("mx1 needed 2 attempts")


def test_log_files_given_by_hand_can_be_read_as_a_central_log(
    central_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--log FILE --central` names each line's host without any configuration: the mail is
    still one journey (joined by its Message-ID), told with mx1, mx2 and mx3."""
    main(
        [
            "trace",
            "from-split@example.net",
            "--log",
            str(central_log),
            "--year",
            "2026",
            "--central",
        ]
    )
    text = capsys.readouterr().out
    assert text.splitlines()[0].endswith(" — 1 mail: delivered")
    assert "✅ split-org@example.org — delivered to the mailbox on mx2" in text
    assert "✅ split-com@example.com — delivered to the mailbox on mx3" in text
    assert "on local" not in text  # the story names no pseudo server


def test_without_central_the_file_is_one_server(
    tmp_path: Path, central_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same file as an ordinary server entry: every message is named after the entry, as
    before (the setting is what makes the difference)."""
    config = _config(tmp_path, central_log)
    doc = _json(capsys, "from-split@example.net", "--config", str(config))
    assert {m["host"] for m in doc["messages"]} == {"loghost"}


def test_every_time_in_the_json_is_written_one_way(
    tmp_path: Path, central_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every timestamp in the JSON document, in journeys, messages, coverage and window, is
    ISO 8601 with a +HH:MM offset (never a `Z` beside `+00:00`)."""
    config = _config(tmp_path, central_log, central=True, host_aliases=ALIASES)
    doc = _json(capsys, "from-greylist@example.net", "2026-11-30", "--config", str(config))
    stamps: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+\S*", value):
            stamps.append(value)

    walk(doc)
    assert len(stamps) > 10  # journeys, messages, recipients, files, the window
    assert all(re.fullmatch(r".*[+-]\d\d:\d\d", s) for s in stamps), stamps
