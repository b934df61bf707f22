"""Content filters, milters, postscreen and a DST fall-back, as real Postfix logged them.

The logs come from scripts/capture_filter_logs.py: a real Postfix talking to a before-queue SMTP
proxy, an after-queue SMTP filter and a milter written there, postscreen refusing a client that
talks first, and a Postfix under libfaketime crossing the end of summer time in Europe/Berlin.
Each file is copied with the modification time the capture left it (git keeps none).
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.cli import main

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "postfix"
# (server, files, zone, modification time of each file as the capture left it)
SERVERS = {
    "gw": (["filters/mail.log"], "UTC", ["2026-12-01T00:34:00+00:00"]),
    "dst1": (["dst-one-file/mail.log"], "Europe/Berlin", ["2026-10-25T02:00:21+01:00"]),
    "dst2": (
        ["dst-rotated/mail.log.1", "dst-rotated/mail.log"],
        "Europe/Berlin",
        ["2026-10-25T02:59:38+02:00", "2026-10-25T02:00:22+01:00"],
    ),
}


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One local server per capture, files copied with their capture-time mtimes."""
    root = tmp_path_factory.mktemp("filters")
    servers = []
    for name, (files, zone, mtimes) in SERVERS.items():
        (root / name).mkdir()
        for rel, mtime in zip(files, mtimes, strict=True):
            target = root / name / Path(rel).name
            shutil.copyfile(FIXTURES / rel, target)
            stamp = datetime.fromisoformat(mtime).timestamp()
            os.utime(target, (stamp, stamp))
        servers.append(
            {"name": name, "local": True, "logs": [f"{root / name}/mail.log*"], "timezone": zone}
        )
    path = root / "mailtrace.yaml"
    path.write_text(yaml.safe_dump({"default_days": None, "servers": servers}))
    return path


def _trace(config: Path, capsys: pytest.CaptureFixture[str], *query: str) -> dict[str, Any]:
    main(["trace", *query, "--config", str(config), "--format", "json"])
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    return doc


def _outcomes(doc: dict[str, Any], address: str) -> list[tuple[str | None, str, str | None]]:
    """(queue ID, status, Postfix's word) of each message's entry for the address, in order."""
    return [
        (m["queue_id"], r["status"], r["postfix_status"])
        for m in doc["messages"]
        for r in m["recipients"]
        if r["address"] == address
    ]


def _recipient(doc: dict[str, Any], address: str, queue_id: str | None) -> dict[str, Any]:
    found: dict[str, Any] = next(
        r
        for m in doc["messages"]
        if m["queue_id"] == queue_id
        for r in m["recipients"]
        if r["address"] == address
    )
    return found


def test_proxy_reject_without_prefix_is_rejected_at_the_door(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A proxy-reject with no NOQUEUE/queue ID is found, rejected with the filter's words, and
    its client comes from the same smtpd process's connect line."""
    doc = _trace(config, capsys, "door-reject@dest.test", "on", "gw")
    assert _outcomes(doc, "door-reject@dest.test") == [(None, "rejected", "proxy-reject")]
    (message,) = doc["messages"]
    assert message["client"] == "localhost[127.0.0.1]"
    r = message["recipients"][0]
    assert r["reason"] == "Rejected for policy reasons (test proxy)"
    assert "before-queue content filter" in r["explanation"]
    assert r["dsn"] == "5.7.1"
    assert doc["diagnosis"] == []


def test_proxy_accept_continues_to_the_queued_copy(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A proxy-accept names the queue ID the filter's smtpd gave; the trace follows it through
    the after-queue filter to the re-injected copy that was delivered."""
    doc = _trace(config, capsys, "pass@dest.test", "on", "gw")
    outcomes = _outcomes(doc, "pass@dest.test")
    assert [o[1:] for o in outcomes] == [
        ("sent", "proxy-accept"),
        ("sent", "sent"),
        ("sent", "sent"),
    ]
    first, handed, copy = (o[0] for o in outcomes)
    assert first is None
    assert doc["messages"][0]["links"][0]["queue_id"] == handed
    filtered = _recipient(doc, "pass@dest.test", handed)
    assert filtered["content_filter"].startswith("127.0.0.1[127.0.0.1]:")
    assert filtered["explanation"].startswith("Handed to the content filter")
    assert any(link["queue_id"] == copy for link in doc["messages"][1]["links"])
    assert _recipient(doc, "pass@dest.test", copy)["relay"] == "virtual"


@pytest.mark.parametrize(
    ("address", "status", "words"),
    [
        ("blocked@dest.test", "discarded", "'blocked'"),
        ("discard@dest.test", "discarded", "'discarded'"),
        ("refuse@dest.test", "bounced", "Refused by the content filter"),
    ],
)
def test_after_queue_filter_verdicts_are_final(
    address: str, status: str, words: str, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A filter's 2.7.0 BLOCKED / discarded reply (Postfix says status=sent) or its 554 is the
    recipient's final outcome, told with the filter's verdict and who acts."""
    doc = _trace(config, capsys, address, "on", "gw")
    outcomes = _outcomes(doc, address)
    assert [o[1] for o in outcomes] == ["sent", status]  # proxy-accept, then the filter
    r = _recipient(doc, address, outcomes[-1][0])
    assert words in r["explanation"]
    assert r["content_filter"] is not None
    assert "us (the mail team)" in r["action_by"]


@pytest.mark.parametrize(
    ("query", "address", "status", "stage", "word"),
    [
        ("milter-mail@dest.test", None, "rejected", None, None),
        ("milter-rcpt@dest.test", "milter-rcpt@dest.test", "rejected", "RCPT", "milter-reject"),
        ("milter-eom.", "ok@dest.test", "rejected", "END-OF-MESSAGE", "milter-reject"),
        ("milter-discard.", "ok@dest.test", "discarded", "END-OF-MESSAGE", "milter-discard"),
        ("milter-hold.", "ok@dest.test", "held", "END-OF-MESSAGE", "milter-hold"),
    ],
)
def test_milter_actions_at_each_stage(
    query: str,
    address: str | None,
    status: str,
    stage: str | None,
    word: str | None,
    config: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """milter-reject at MAIL, RCPT and end of data, milter-discard and milter-hold each give
    the recipient that status, with the milter named and the stage it acted at."""
    if "@" in query:
        doc = _trace(config, capsys, query, "on", "gw")
    else:  # by Message-ID prefix is not a query: find the message by its queue ID
        text = (FIXTURES / "filters/mail.log").read_text()
        line = next(x for x in text.splitlines() if f"message-id=<{query}" in x)
        doc = _trace(config, capsys, line.split(": ")[1], "on", "gw")
    (message,) = doc["messages"]
    assert message["status"] == status
    if address is None:  # refused at MAIL FROM: no recipient was ever named
        assert message["sender"] == query
        assert "milter-reject: MAIL" in message["lines"][0]
        return
    r = _recipient(doc, address, message["queue_id"])
    assert (r["status"], r["smtp_stage"], r["postfix_status"]) == (status, stage, word)
    assert "milter" in r["explanation"]


def test_postscreen_reject_is_refused_at_the_door(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """postscreen's NOQUEUE reject of a pregreeting client is a rejection by our own front door,
    and a client-IP query also brings its PREGREET verdict."""
    doc = _trace(config, capsys, "bot@spam.test", "on", "gw")
    (message,) = doc["messages"]
    r = message["recipients"][0]
    assert (r["status"], r["dsn"]) == ("rejected", "5.5.1")
    assert "postscreen" in r["explanation"]
    doc = _trace(config, capsys, "127.0.0.1", "on", "gw")
    screened = [m for m in doc["messages"] if m["sender"] == "bot@spam.test"]
    assert any("PREGREET" in note for m in screened for note in m["notes"])


@pytest.mark.parametrize("server", ["dst1", "dst2"])
def test_repeated_hour_times_do_not_depend_on_the_query(
    server: str, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Across the DST fall-back (02:59 CEST, then 02:00 CET; in one file, or either side of a
    rotation), a line gets the same time from an address, a domain and a queue-ID query, and
    the mails after the step back are later than the one before it."""
    by_domain = _trace(config, capsys, "@dest.test", "on", server)
    seen = {
        r["address"]: (m["queue_id"], m["first_seen"])
        for m in by_domain["messages"]
        for r in m["recipients"]
    }
    assert set(seen) == {"before@dest.test", "after@dest.test", "later@dest.test"}
    stamps = {a: datetime.fromisoformat(s) for a, (_, s) in seen.items()}
    assert stamps["before@dest.test"] < stamps["after@dest.test"] < stamps["later@dest.test"]
    for address, (queue_id, first_seen) in seen.items():
        for query in (address, queue_id):
            doc = _trace(config, capsys, query, "on", server)
            times = {m["first_seen"] for m in doc["messages"]}
            assert times == {first_seen}, (query, times, first_seen)
