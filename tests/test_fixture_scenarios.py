"""Every scenario captured from a real Postfix: `mailtrace trace SENDER --format json` is right.

The logs and their expectations come from scripts/capture_postfix_logs.sh (scenarios.yaml). Git
does not keep modification times, and yearless lines get their year from them, so each file is
copied with the modification time the capture intended (or the end of its last line's year).
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.cli import main
from tests.journeys import expected_ends

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "postfix"
DOC = yaml.safe_load((FIXTURES / "scenarios.yaml").read_text(encoding="utf-8"))
FILES = {f["path"]: f for f in DOC["files"]}

# scenario host -> (configured server name, files, aliases other servers' relay= lines use)
HOSTS: dict[str, tuple[str, list[str], list[str]]] = {
    "mx-a": ("mx-a", ["two-hosts/mx-a/mail.log"], ["mx-a.test", "localhost"]),
    "mx-b": ("mx-b", ["two-hosts/mx-b/mail.log"], ["mx-b.test", "127.0.0.1:12526"]),
    "mx-rot": ("mx-rot", ["rotated/mail.log.2.gz", "rotated/mail.log.1", "rotated/mail.log"], []),
    "mx-ny": ("mx-ny", ["new-year/mail.log"], []),
    "mx-s/rfc3339": ("mx-s-rfc3339", ["rfc3339/mail.log"], []),
    "mx-s/traditional": ("mx-s-traditional", ["syslog-traditional/mail.log"], []),
    "mx1": ("mx1", ["next-hops/mx1/mail.log"], ["mx1.test", "localhost"]),
    "mx2": ("mx2", ["next-hops/mx2/mail.log"], ["mx2.test", "127.0.0.1:12538"]),
    "mx3": ("mx3", ["next-hops/mx3/mail.log"], ["mx3.test", "127.0.0.1:12539"]),
}
CAPTURE_HOSTS = {
    "two-hosts": ["mx-a", "mx-b"],
    "rotated": ["mx-rot"],
    "new-year": ["mx-ny"],
    "syslog": ["mx-s/rfc3339", "mx-s/traditional"],
    "next-hops": ["mx1", "mx2", "mx3"],
}
# Captures configured apart from the others: mx1, like mx-a, is "localhost" to its next hops,
# and one name may stand for only one configured server.
OWN_CONFIG = {"next-hops"}


def _mtime(meta: dict[str, Any]) -> datetime:
    if meta.get("intended_mtime"):
        return datetime.fromisoformat(str(meta["intended_mtime"]))
    return datetime(int(meta["years"][-1]), 12, 31, 23, 0, tzinfo=UTC)


def _write_config(root: Path, hosts: list[str]) -> Path:
    """A configuration with one local server per host, its files copied with their mtimes."""
    servers = []
    for name, files, aliases in (HOSTS[h] for h in hosts):
        directory = root / name
        directory.mkdir()
        for rel in files:
            target = directory / Path(rel).name
            shutil.copyfile(FIXTURES / rel, target)
            stamp = _mtime(FILES[rel]).timestamp()
            os.utime(target, (stamp, stamp))
        servers.append(
            {
                "name": name,
                "local": True,
                "logs": [f"{directory}/mail.log*"],
                "timezone": FILES[files[0]]["timezone"],
                "aliases": aliases,
            }
        )
    path = root / "mailtrace.yaml"
    path.write_text(yaml.safe_dump({"default_days": None, "servers": servers}))
    return path


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The configuration each capture is traced with: a shared one, or its own (OWN_CONFIG)."""
    shared_hosts = [h for c, hosts in CAPTURE_HOSTS.items() if c not in OWN_CONFIG for h in hosts]
    shared = _write_config(tmp_path_factory.mktemp("fixtures"), shared_hosts)
    out = {c: shared for c in CAPTURE_HOSTS if c not in OWN_CONFIG}
    for capture in OWN_CONFIG:
        out[capture] = _write_config(tmp_path_factory.mktemp(capture), CAPTURE_HOSTS[capture])
    return out


@pytest.fixture(scope="module")
def config(configs: dict[str, Path]) -> Path:
    """The configuration shared by the captures that need no configuration of their own."""
    return configs["two-hosts"]


def _dsn(status: str, dsn: str | None) -> str | None:
    """Held and deleted messages keep the DSN of an earlier attempt; the capture lists none."""
    return None if status in ("held", "deleted") else dsn


def _trace(config: Path, capsys: pytest.CaptureFixture[str], *query: str) -> dict[str, Any]:
    main(["trace", *query, "--config", str(config), "--format", "json"])
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    return doc


@pytest.mark.parametrize("scenario", DOC["scenarios"], ids=[s["name"] for s in DOC["scenarios"]])
def test_scenario_statuses(
    scenario: dict[str, Any], configs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Each recipient ends in the scenario's status (and DSN) on each host, found by the sender."""
    hosts = CAPTURE_HOSTS[scenario["capture"]]
    servers = ",".join(HOSTS[h][0] for h in hosts)
    doc = _trace(configs[scenario["capture"]], capsys, scenario["sender"], "on", servers)
    assert doc["failures"] == []
    mine = [m for m in doc["messages"] if m["sender"] == scenario["sender"]]
    assert mine, f"nothing found for {scenario['sender']}"
    actual = Counter(
        (m["host"], r["address"], r["status"], _dsn(r["status"], r["dsn"]))
        for m in mine
        for r in m["recipients"]
    )
    # Each refused SMTP session is its own pre-queue entry (mx-b refuses every retry of a
    # deferred message), so those count once however often they happened.
    pre_queue = {
        (m["host"], r["address"], r["status"], _dsn(r["status"], r["dsn"]))
        for m in mine
        if m["queue_id"] is None
        for r in m["recipients"]
    }
    for key in pre_queue:
        actual[key] = 1
    expected: Counter[tuple[str, str, str, str | None]] = Counter()
    unlogged = []
    all_lines = "\n".join(line for m in mine for line in m["lines"])
    for r in scenario["recipients"]:
        host = HOSTS[r["host"]][0]
        if r["status"] == "unknown" and r["address"] not in all_lines:
            unlogged.append(host)  # no line names the recipient before the logs end
            continue
        expected[(host, r["address"], r["status"], _dsn(r["status"], r.get("dsn")))] += 1
    assert actual == expected
    for host in unlogged:
        assert [m["status"] for m in mine if m["host"] == host] == ["unknown"]


@pytest.mark.parametrize("scenario", DOC["scenarios"], ids=[s["name"] for s in DOC["scenarios"]])
def test_scenario_queue_ids_and_links(
    scenario: dict[str, Any], configs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The queue IDs the capture saw are the messages found, and every link it saw is reported."""
    hosts = CAPTURE_HOSTS[scenario["capture"]]
    servers = ",".join(HOSTS[h][0] for h in hosts)
    doc = _trace(configs[scenario["capture"]], capsys, scenario["sender"], "on", servers)
    found = {(m["host"], m["queue_id"]) for m in doc["messages"]}
    for host, ids in (scenario.get("queue_ids") or {}).items():
        for qid in ids:
            assert (HOSTS[host][0], qid) in found
    links = {
        (m["host"], m["queue_id"], link["kind"], link["host"], link["queue_id"])
        for m in doc["messages"]
        for link in m["links"]
    }
    kinds = {
        "relay": "next_hop",
        "forward": "forwarded",
        "bounce": "bounce",
        "delay-notice": "bounce",
        "content-filter": "reinjected",
    }
    for link in scenario.get("links") or []:
        src_host, src_id = link["from"].split()
        dst_words = link["to"].split()  # "mx-b 4jcG..." or "(not in these logs) E581A..."
        dst_id = dst_words[-1]
        dst = None if dst_words[0].startswith("(") else HOSTS[dst_words[0]][0]
        assert (HOSTS[src_host][0], src_id, kinds[link["kind"]], dst, dst_id) in links, link


@pytest.mark.parametrize("scenario", DOC["scenarios"], ids=[s["name"] for s in DOC["scenarios"]])
def test_scenario_is_one_mail_with_each_recipients_end_of_road(
    scenario: dict[str, Any], configs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Asked for a scenario's sender, the JSON holds one journey: every recipient at the end of
    its road (status and server), with the bounce and delay notices it caused as notices and
    every one of its queue IDs referenced as evidence."""
    # The syslog capture is one server written in two formats: ask one of them.
    hosts = CAPTURE_HOSTS[scenario["capture"]][: 1 if scenario["capture"] == "syslog" else None]
    doc = _trace(
        configs[scenario["capture"]],
        capsys,
        scenario["sender"],
        "on",
        ",".join(HOSTS[h][0] for h in hosts),
    )
    [journey] = doc["journeys"]
    mine = {**scenario, "recipients": [r for r in scenario["recipients"] if r["host"] in hosts]}
    ends = {
        address: (status, HOSTS[host][0]) for address, (status, host) in expected_ends(mine).items()
    }
    got = {r["address"]: (r["status"], r["host"]) for r in journey["recipients"]}
    if not got:  # accepted, and no line names a recipient before the logs end
        assert set(ends.values()) == {("unknown", HOSTS[hosts[0]][0])}
        assert journey["verdict"] == "unknown"
        return
    assert got == ends
    statuses = {status for status, _ in ends.values()}
    if statuses == {"sent"}:
        assert journey["verdict"] == "delivered"
    elif "sent" in statuses:
        assert journey["verdict"] == "partly_delivered"
    else:
        assert journey["verdict"] != "delivered"
    referenced = {(m["host"], m["queue_id"]) for m in journey["messages"]}
    noticed = {(n["host"], n["queue_id"]) for n in journey["notices"]}
    for link in scenario.get("links") or []:
        src_host, src_id = link["from"].split()
        if src_host not in hosts:
            continue
        assert (HOSTS[src_host][0], src_id) in referenced
        dst_host, dst_id = link["to"].split()[0], link["to"].split()[-1]
        if dst_host.startswith("("):
            continue  # handed outside the searched logs
        where = noticed if link["kind"] in ("bounce", "delay-notice") else referenced
        assert (HOSTS[dst_host][0], dst_id) in where, link


def test_new_year_years(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A message held on Dec 31 and released on Jan 01 has lines dated in both years."""
    doc = _trace(config, capsys, "from-nyheld@example.net", "on", "mx-ny")
    (message,) = [m for m in doc["messages"] if m["sender"] == "from-nyheld@example.net"]
    assert message["first_seen"].startswith("2025-12-31T23:59")
    assert message["last_seen"].startswith("2026-01-01T00:0")
    assert message["status"] == "sent"


def test_rfc3339_and_traditional_agree(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The same syslog lines in RFC 3339 and traditional format give the same instants."""
    doc = _trace(config, capsys, "from-sysheld@example.net")
    spans = {
        m["host"]: (m["first_seen"], m["last_seen"])
        for m in doc["messages"]
        if m["sender"] == "from-sysheld@example.net"
    }
    rfc = {
        k: datetime.fromisoformat(v)
        for k, v in zip(("first", "last"), spans["mx-s-rfc3339"], strict=True)
    }
    trad = {
        k: datetime.fromisoformat(v)
        for k, v in zip(("first", "last"), spans["mx-s-traditional"], strict=True)
    }
    assert rfc["first"].replace(microsecond=0) == trad["first"]
    assert rfc["last"].replace(microsecond=0) == trad["last"]


def test_day_query_in_the_askers_zone(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Jan 01 in Berlin includes 23:xx UTC on Dec 31: the date is the asker's, the lines the server's."""
    berlin = _trace(
        config,
        capsys,
        "from-nyheld@example.net",
        "2026-01-01",
        "on",
        "mx-ny",
        "--tz",
        "Europe/Berlin",
    )
    utc = _trace(
        config, capsys, "from-nyheld@example.net", "2025-12-31", "on", "mx-ny", "--tz", "UTC"
    )
    assert [m["queue_id"] for m in berlin["messages"]] == [m["queue_id"] for m in utc["messages"]]
    assert berlin["messages"]


def test_next_hop_refuses_for_now_then_accepts(
    configs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """A mail mx2 refused with a 4xx and accepted on retry is sent on mx1 after every attempt
    its log shows, and mx2's temporary refusal precedes the copy mx2 accepted."""
    scenario = next(s for s in DOC["scenarios"] if s["name"] == "greylisted")
    (address,) = {r["address"] for r in scenario["recipients"]}
    (first,) = scenario["queue_ids"]["mx1"]
    (accepted,) = scenario["queue_ids"]["mx2"]
    log = (FIXTURES / "next-hops" / "mx1" / "mail.log").read_text(encoding="utf-8")
    tries = sum(f" {first}: to=<{address}>, " in line for line in log.splitlines())
    assert tries >= 2  # the capture's point: at least one 4xx before the 2xx
    doc = _trace(configs["next-hops"], capsys, scenario["sender"], "on", "mx1,mx2,mx3")
    messages = {(m["host"], m["queue_id"]): m for m in doc["messages"]}
    (on_mx1,) = messages[("mx1", first)]["recipients"]
    assert (on_mx1["status"], on_mx1["attempts"]) == ("sent", tries)
    refusal = messages[("mx2", None)]
    (refused,) = refusal["recipients"]
    assert refused["dsn"].startswith("4.")  # temporary; its status is test_scenario_statuses' job
    assert datetime.fromisoformat(refusal["last_seen"]) < datetime.fromisoformat(
        messages[("mx2", accepted)]["first_seen"]
    )


def test_greylisted_mail_is_delivered_and_says_what_held_it_up(
    configs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """A next hop that answered 4xx and later 2xx: one journey, delivered on mx2, with mx1's
    extra attempt and mx2's own "try later" words as the hold-up, and mx2's refusal as evidence."""
    doc = _trace(configs["next-hops"], capsys, "from-greylist@example.net", "on", "mx1,mx2,mx3")
    [journey] = doc["journeys"]
    assert journey["verdict"] == "delivered"
    [rcpt] = journey["recipients"]
    assert (rcpt["address"], rcpt["status"], rcpt["host"]) == (
        "greylisted@example.org",
        "sent",
        "mx2",
    )
    assert rcpt["road"] == ["mx1", "mx2", "mailbox"]
    [hold_up] = rcpt["hold_ups"]
    assert hold_up.startswith("mx1 needed 2 attempts; mx2 answered “4.7.1 ")
    assert {"host": "mx2", "queue_id": None} in [
        {"host": m["host"], "queue_id": m["queue_id"]} for m in journey["messages"]
    ]


def test_two_next_hops_are_one_mail_delivered_to_both(
    configs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """One mail to two recipients relayed to two different servers: each recipient's road
    ends on its own next hop, and the answer is one mail delivered to all 2."""
    main(["trace", "from-split@example.net", "--config", str(configs["next-hops"])])
    text = capsys.readouterr().out
    assert text.splitlines()[0].endswith(" — 1 mail: delivered")
    assert "✅ Delivered to all 2 · from-split@example.net" in text
    assert "✅ split-org@example.org — delivered to the mailbox on mx2" in text
    assert "✅ split-com@example.com — delivered to the mailbox on mx3" in text
    assert "Road: mx1 → mx3 → mailbox" in text


def test_a_4xx_refusal_at_the_door_is_for_now_not_rejected(
    configs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Asked on mx-b alone, mx-b's 450 refusals of a deferred mail are "refused for now":
    status deferred with the hourglass, never the 🚫 of a permanent rejection."""
    doc = _trace(configs["two-hosts"], capsys, "from-deferred@example.net", "on", "mx-b")
    [journey] = doc["journeys"]
    [rcpt] = journey["recipients"]
    assert (rcpt["status"], rcpt["temporary"], rcpt["dsn"]) == ("deferred", True, "4.2.0")
    assert journey["verdict"] == "deferred"
    main(
        ["trace", "from-deferred@example.net", "on", "mx-b", "--config", str(configs["two-hosts"])]
    )
    text = capsys.readouterr().out
    assert "⏳ Refused for now by mx-b" in text
    assert "🚫" not in text


def test_one_failure_names_the_same_actor_on_every_hop(
    configs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Refusals by our own next hop: a 5.1.1 bounce is the sender's to fix, as mx-b's refusal
    alone would say; an expiry after mx-b kept saying "later" is ours, naming mx-b."""
    bounced = _trace(configs["two-hosts"], capsys, "from-bounce@example.net", "on", "mx-a,mx-b")
    [rcpt] = bounced["journeys"][0]["recipients"]
    alone = _trace(configs["two-hosts"], capsys, "from-bounce@example.net", "on", "mx-b")
    [refusal] = alone["journeys"][0]["recipients"]
    assert (rcpt["refused_by"], refusal["status"]) == ("mx-b", "rejected")
    assert rcpt["action_by"] == refusal["action_by"] == "the sender: check the address"
    expired = _trace(configs["two-hosts"], capsys, "from-expired@example.net", "on", "mx-a,mx-b")
    [late] = expired["journeys"][0]["recipients"]
    assert late["status"] == "expired"
    assert late["action_by"] == "us (the mail team): our own mx-b kept refusing it for now"
