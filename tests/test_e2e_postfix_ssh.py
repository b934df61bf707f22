"""End to end: real Postfix relays mail between two instances; mailtrace traces it over real SSH."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main
from tests.postfix_live import DOMAIN_B, MAILBOX, Instance, running_pair, send, wait_for
from tests.sshd import SshCluster

pytestmark = [pytest.mark.postfix, pytest.mark.sshd]


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[Instance, Instance]]:
    """Two running Postfix instances with one delivered and one bounced message logged."""
    with running_pair() as (a, b):
        send(a.port, "e2e-sender@example.net", [MAILBOX, f"nobody@{DOMAIN_B}"], "e2e")
        wait_for(b, f"to=<{MAILBOX}>", "status=sent")
        wait_for(a, f"to=<nobody@{DOMAIN_B}>", "status=bounced", "sender non-delivery notification")
        yield a, b


def _config(cluster: SshCluster, a: Instance, b: Instance, tmp: Path) -> Path:
    servers = [
        # mx-b sees mx-a's connections as localhost[127.0.0.1] (reverse DNS of loopback)
        cluster.server_config(
            "mx-a",
            server="mx1",
            logs=(f"{a.log_dir}/mail.log*",),
            aliases=("mx-a.test", "localhost"),
        ),
        cluster.server_config(
            "mx-b",
            server="mx2",
            logs=(f"{b.log_dir}/mail.log*",),
            aliases=(DOMAIN_B, f"127.0.0.1:{b.port}"),
        ),
    ]
    config = {
        "timezone": "UTC",
        "servers": [s.model_dump(mode="json", exclude_none=True) for s in servers],
        "limits": {"connect_timeout": 5, "command_timeout": 30},
    }
    path = tmp / "mailtrace.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def test_trace_follows_the_hop_over_ssh(
    pair: tuple[Instance, Instance],
    sshd_cluster: SshCluster,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Searching the sender over SSH finds the message on mx-a and its next hop on mx-b, with statuses."""
    a, b = pair
    status = main(
        [
            "trace",
            "e2e-sender@example.net",
            "--config",
            str(_config(sshd_cluster, a, b, tmp_path)),
            "--format",
            "json",
        ]
    )
    doc = json.loads(capsys.readouterr().out)
    assert status == 0, doc
    assert doc["failures"] == []
    by_host = {(m["host"], m["queue_id"]): m for m in doc["messages"]}
    first = next(
        m
        for (host, _), m in by_host.items()
        if host == "mx-a" and m["sender"] == "e2e-sender@example.net"
    )
    states = {r["address"]: r["status"] for r in first["recipients"]}
    assert states == {MAILBOX: "sent", f"nobody@{DOMAIN_B}": "bounced"}
    assert first["status"] == "bounced"
    bounced = next(r for r in first["recipients"] if r["status"] == "bounced")
    assert bounced["dsn"] == "5.1.1"
    hop = next(link for link in first["links"] if link["kind"] == "next_hop")
    assert hop["host"] == "mx-b"
    second = by_host[("mx-b", hop["queue_id"])]
    # mx-b refused nobody@ at RCPT time (so mx-a bounced it) and delivered live@ to its mailbox
    states = {r["address"]: (r["status"], r["dsn"]) for r in second["recipients"]}
    assert states == {f"nobody@{DOMAIN_B}": ("rejected", "5.1.1"), MAILBOX: ("sent", "2.0.0")}
    assert re.fullmatch(r"[0-9A-Za-z]{5,}", hop["queue_id"])
    notice = next(link for link in first["links"] if link["kind"] == "bounce")
    assert ("mx-a", notice["queue_id"]) in by_host  # the bounce notice to the sender, traced too


def test_trace_by_next_hop_queue_id_finds_the_first_hop(
    pair: tuple[Instance, Instance],
    sshd_cluster: SshCluster,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Asking mx-b for its queue ID also brings the previous hop on mx-a ("queued as")."""
    a, b = pair
    qid = re.search(r"(\w+): to=<" + re.escape(MAILBOX) + ">", b.log_text())
    assert qid is not None
    status = main(
        [
            "trace",
            qid.group(1),
            "on",
            "mx-b",
            "--config",
            str(_config(sshd_cluster, a, b, tmp_path)),
            "--format",
            "json",
        ]
    )
    doc = json.loads(capsys.readouterr().out)
    assert status == 0
    found = sorted((m["host"], m["sender"]) for m in doc["messages"])
    # the first hop on mx-a, its bounce notice to the sender (for nobody@), and mx-b's message
    assert found == [
        ("mx-a", ""),
        ("mx-a", "e2e-sender@example.net"),
        ("mx-b", "e2e-sender@example.net"),
    ]
