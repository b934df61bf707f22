"""The end of the road each captured scenario's recipients must reach, read from scenarios.yaml.

scenarios.yaml lists every recipient's state on every host it was logged on, and the links
between queue IDs. A recipient's end of the road is the state on the last queue it reached: an
entry whose queue handed the same address (or the address an alias expanded it to) on to
another listed queue is a step on the way, not the end. A refusal before queueing is the end
only for an address that was never queued; a 4xx refusal there is "refused for now" (deferred).
"""

from __future__ import annotations

from typing import Any

HAND_OVERS = ("relay", "forward", "content-filter")


def expected_ends(scenario: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """address -> (status, host) at the end of its road."""
    onward: dict[str, list[str]] = {}
    for link in scenario.get("links") or []:
        if link["kind"] in HAND_OVERS:
            onward.setdefault(link["from"], []).append(link["to"])
    entries = scenario["recipients"]

    def place(e: dict[str, Any]) -> str:
        return f"{e['host']} {e['queue_id']}"

    def continued(e: dict[str, Any]) -> bool:
        targets = onward.get(place(e), [])
        return any(
            place(x) in targets and e["address"] in (x["address"], x.get("orig_to"))
            for x in entries
        )

    queued = {e["address"] for e in entries if e["queue_id"] is not None}
    ends: dict[str, tuple[str, str]] = {}
    for e in entries:
        if e["queue_id"] is None and e["address"] in queued:
            continue  # a next hop's refusal: evidence of the mail the previous hop delivers
        if e["queue_id"] is not None and continued(e):
            continue
        status = e["status"]
        if e["queue_id"] is None and status == "rejected" and str(e.get("dsn") or "")[:1] == "4":
            status = "deferred"
        ends[e["address"]] = (status, e["host"])
    return ends
