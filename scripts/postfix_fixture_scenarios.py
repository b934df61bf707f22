#!/usr/bin/env python3
"""Check the captured Postfix fixture logs and write scenarios.yaml describing them.

Strategy: postfix_fixture_scenarios.toml (beside this file) says what
capture_postfix_logs.sh sends and what each recipient must come out as. Queue IDs are not
known in advance, so they are read from the saved logs: every line whose queue ID also carries
the scenario's ``message-id=<...>`` or ``from=<sender>`` seeds the set, which then grows along
"forwarded as", "queued as" and "notification:" references on the same host. Each expected
status is proved by regexes that must match lines of those queue IDs (or NOQUEUE lines naming
sender and recipient); "deferred", "held" and "unknown" also prove that no later final line
exists; "order" asks for lines of one host in a given order. If any check fails, the exit
status is 1 and scenarios.yaml is left alone.

Standard library only: it runs on the bare host that ran the capture.

Usage: postfix_fixture_scenarios.py FIXTURE_DIR
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CATALOGUE = Path(__file__).with_suffix(".toml")
STATUSES = (
    "sent",
    "bounced",
    "deferred",
    "expired",
    "rejected",
    "discarded",
    "held",
    "deleted",
    "unknown",
)

# Short IDs are hex; long IDs (enable_long_queue_ids) use digits and consonants only, so words
# such as "warning" or "NOQUEUE" never look like a queue ID.
QUEUE_ID = r"(?:[0-9A-F]{6,}|[0-9BCDFGHJ-NP-TV-Zbcdfghj-np-tv-z]{10,})"
SHORT_QUEUE_ID = re.compile(r"[0-9A-F]+")
LINE_QUEUE_ID = re.compile(r"\]: (" + QUEUE_ID + r"): ")
# Bounce notices get a Message-Id like <20261128164344.B834421AF19@mx-a.test>: a full date.
POSTFIX_MESSAGE_ID = re.compile(r"message-id=<(\d{4})\d{10}\." + QUEUE_ID + r"@")
VERSION = re.compile(r"daemon started -- version ([0-9.]+)")
NEXT = r"(?P<next>" + QUEUE_ID + r")"
RELAYED = re.compile(r"status=sent \(250 [^)]*queued as " + NEXT + r"\)")
FORWARDED = re.compile(r"status=sent \(forwarded as " + NEXT + r"\)")
NOTICE = re.compile(
    r"(?P<kind>sender non-delivery|sender delay|sender delivery status"
    r"|postmaster non-delivery) notification: " + NEXT
)
ORIG_QUEUE_ID = re.compile(r"orig_queue_id=(?P<orig>" + QUEUE_ID + r")")
NOTICE_KINDS = {"sender non-delivery": "bounce", "sender delay": "delay-notice"}


@dataclasses.dataclass(frozen=True)
class Rcpt:
    group: str
    address: str
    status: str
    dsn: str | None
    evidence: tuple[str, ...]  # regex templates, see the catalogue's header
    absent: tuple[str, ...]
    min_matches: int
    orig_to: str | None
    notes: str | None


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    capture: str
    summary: str
    sender: str
    recipients: tuple[Rcpt, ...]
    spans: tuple[tuple[str, str], ...]
    order: tuple[tuple[str, str], ...]
    notes: str | None

    @property
    def message_id(self) -> str:
        return f"{self.name}@client.example"


@dataclasses.dataclass(frozen=True)
class Line:
    file: str
    number: int
    text: str
    queue_id: str | None


def read_catalogue() -> tuple[dict[str, Any], list[Scenario]]:
    raw = tomllib.loads(CATALOGUE.read_text(encoding="utf-8"))
    patterns: dict[str, str | list[str]] = raw["patterns"]

    def expand(names: list[str]) -> tuple[str, ...]:
        out: list[str] = []
        for name in names:
            found = patterns.get(name, name)
            out.extend([found] if isinstance(found, str) else found)
        return tuple(out)

    scenarios = []
    for sc in raw["scenario"]:
        recipients = []
        for r in sc["recipients"]:
            sent = r["status"] == "sent"
            for group in [r["host"]] if "host" in r else sc["hosts"]:
                recipients.append(
                    Rcpt(
                        group=group,
                        address=r["address"],
                        status=r["status"],
                        dsn=r.get("dsn", "2.0.0" if sent else None),
                        evidence=expand(r.get("evidence", ["delivered"] if sent else [])),
                        absent=expand(r.get("absent", [])),
                        min_matches=r.get("min_matches", 1),
                        orig_to=r.get("orig_to"),
                        notes=r.get("notes"),
                    )
                )
        scenarios.append(
            Scenario(
                name=sc["name"],
                capture=sc["capture"],
                summary=sc["summary"],
                sender=sc["sender"],
                recipients=tuple(recipients),
                spans=tuple((f, rx) for f, rx in sc.get("spans", [])),
                order=tuple((g, rx) for g, rx in sc.get("order", [])),
                notes=sc.get("notes"),
            )
        )
    return raw, scenarios


def read_logs(fixtures: Path, files: list[dict[str, Any]]) -> dict[str, list[Line]]:
    """Lines per group (one host's log), oldest file first."""
    groups: dict[str, list[Line]] = {}
    for f in files:
        path = fixtures / f["path"]
        if not path.exists():
            continue
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
        for number, text in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            m = LINE_QUEUE_ID.search(text)
            line = Line(f["path"], number, text, m.group(1) if m else None)
            groups.setdefault(f["group"], []).append(line)
    return groups


def find_queue_ids(lines: list[Line], sc: Scenario) -> list[str]:
    """The scenario's queue IDs in one host's log, in order of appearance."""
    known = {ln.queue_id for ln in lines if ln.queue_id}
    seeds = (f"message-id=<{sc.message_id}>", f"from=<{sc.sender}>")
    found = list(
        dict.fromkeys(
            ln.queue_id for ln in lines if ln.queue_id and any(s in ln.text for s in seeds)
        )
    )
    grew = True
    while grew:
        grew = False
        for ln in lines:
            if ln.queue_id not in found:
                continue
            for rx in (RELAYED, FORWARDED, NOTICE):
                m = rx.search(ln.text)
                if m and m.group("next") in known and m.group("next") not in found:
                    found.append(m.group("next"))
                    grew = True
    return found


def find_links(groups: dict[str, list[Line]], qids: dict[str, list[str]]) -> list[dict[str, str]]:
    where = {ln.queue_id: g for g, lines in groups.items() for ln in lines if ln.queue_id}
    out: list[dict[str, str]] = []

    def add(kind: str, group: str, source: str, target: str) -> None:
        item = {
            "kind": kind,
            "from": f"{group} {source}",
            "to": f"{where.get(target, '(not in these logs)')} {target}",
        }
        if item not in out:
            out.append(item)

    for group, ids in qids.items():
        for ln in groups.get(group, []):
            if ln.queue_id not in ids:
                continue
            if m := RELAYED.search(ln.text):
                same_host = where.get(m.group("next")) == group
                add("content-filter" if same_host else "relay", group, ln.queue_id, m["next"])
            if m := FORWARDED.search(ln.text):
                add("forward", group, ln.queue_id, m["next"])
            if m := NOTICE.search(ln.text):
                add(NOTICE_KINDS.get(m["kind"], "notice"), group, ln.queue_id, m["next"])
            if m := ORIG_QUEUE_ID.search(ln.text):
                add("content-filter", group, m["orig"], ln.queue_id)
    return out


def compile_template(template: str, qids: list[str], rcpt: str, sender: str) -> re.Pattern[str]:
    alternation = "(?:" + "|".join(map(re.escape, qids)) + ")" if qids else "(?!)"
    return re.compile(
        template.replace("@Q@", alternation)
        .replace("@R@", re.escape(rcpt))
        .replace("@S@", re.escape(sender))
    )


def check_recipient(
    r: Rcpt, sc: Scenario, lines: list[Line], qids: list[str], problems: list[str]
) -> dict[str, Any]:
    evidence: list[Line] = []
    queue_id = None
    for i, template in enumerate(r.evidence):
        rx = compile_template(template, qids, r.address, sc.sender)
        hits = [ln for ln in lines if rx.search(ln.text)]
        if i == 0 and r.orig_to:
            hits = [ln for ln in hits if f"orig_to=<{r.orig_to}>" in ln.text]
        need = r.min_matches if i == 0 else 1
        if len(hits) < need:
            problems.append(
                f"{sc.name}: {r.group} {r.address} ({r.status}): {len(hits)} line(s)"
                f" match {template!r}, need {need}"
            )
        if i == 0 and hits:
            queue_id = hits[-1].queue_id
        evidence.extend(ln for ln in hits[:3] if ln not in evidence)
    for template in r.absent:
        rx = compile_template(template, qids, r.address, sc.sender)
        for ln in lines:
            if rx.search(ln.text):
                problems.append(
                    f"{sc.name}: {r.address} should be {r.status}, but "
                    f"{ln.file}:{ln.number} says otherwise"
                )
                break
    return {
        "address": r.address,
        "host": r.group,
        "queue_id": queue_id,
        "status": r.status,
        "dsn": r.dsn,
        "orig_to": r.orig_to,
        "evidence": [f"{ln.file}:{ln.number}: {ln.text}" for ln in evidence],
        "notes": r.notes,
    }


def check_order(
    sc: Scenario, groups: dict[str, list[Line]], qids: dict[str, list[str]], problems: list[str]
) -> None:
    """On each host, the order's regexes match the scenario's lines one after the other."""
    after: dict[str, int] = {}  # host -> index of the line the previous step matched
    noqueue = f"from=<{sc.sender}>"
    for group, rx_text in sc.order:
        rx, lines = re.compile(rx_text), groups.get(group, [])
        start = after.get(group, -1) + 1
        found = next(
            (
                i
                for i in range(start, len(lines))
                if (lines[i].queue_id in qids.get(group, []) or noqueue in lines[i].text)
                and rx.search(lines[i].text)
            ),
            None,
        )
        if found is None:
            problems.append(f"{sc.name}: on {group}, no later line matches {rx_text!r}")
            return
        after[group] = found


def check_scenario(
    sc: Scenario, groups: dict[str, list[Line]], order: list[str], problems: list[str]
) -> dict[str, Any]:
    hosts = list(dict.fromkeys(r.group for r in sc.recipients))
    qids = {g: find_queue_ids(groups.get(g, []), sc) for g in hosts}
    recipients = [
        check_recipient(r, sc, groups.get(r.group, []), qids[r.group], problems)
        for r in sc.recipients
    ]
    group_of = {ln.file: g for g, lines in groups.items() for ln in lines}
    for file, rx_text in sc.spans:
        rx, group = re.compile(rx_text), group_of.get(file, "")
        if not any(
            ln.file == file and ln.queue_id in qids.get(group, []) and rx.search(ln.text)
            for ln in groups.get(group, [])
        ):
            problems.append(f"{sc.name}: no line of its queue IDs in {file} matches {rx_text!r}")
    check_order(sc, groups, qids, problems)
    files = {
        ln.file
        for g in hosts
        for ln in groups.get(g, [])
        if ln.queue_id in qids[g] or f"from=<{sc.sender}>" in ln.text
    }
    found = {g: q for g, q in qids.items() if q}
    return {
        "name": sc.name,
        "capture": sc.capture,
        "summary": sc.summary,
        "sender": sc.sender,
        "message_id": sc.message_id,
        "files": sorted(files, key=order.index),
        "queue_ids": found,
        "links": find_links(groups, found),
        "recipients": recipients,
        "notes": sc.notes,
    }


def describe_file(
    f: dict[str, Any],
    groups: dict[str, list[Line]],
    files: list[dict[str, Any]],
    problems: list[str],
) -> dict[str, Any]:
    lines = [ln for ln in groups.get(f["group"], []) if ln.file == f["path"]]
    if not lines:
        problems.append(f"missing or empty: {f['path']}")
    long_ids = f.get("long_queue_ids", False)
    wrong = sorted(
        {
            ln.queue_id
            for ln in lines
            if ln.queue_id and (not SHORT_QUEUE_ID.fullmatch(ln.queue_id)) != long_ids
        }
    )
    if wrong:
        problems.append(f"{f['path']}: unexpected queue ID form: {wrong[:3]}")
    # Files without the year in their lines were written in the capture's year, which the
    # bounce notices' Message-Ids of the same capture show.
    same_run = {x["group"] for x in files if x["capture"] == f["capture"]}
    years = {
        m[1]
        for g in same_run
        for ln in groups.get(g, [])
        if (m := POSTFIX_MESSAGE_ID.search(ln.text))
    }
    span = f.get("years") or ([int(y) for y in years] * 2 if len(years) == 1 else [])
    if not span:
        problems.append(f"{f['path']}: cannot tell the year (no Postfix-made Message-Id)")
    out = {k: f[k] for k in ("path", "capture", "host", "syslog_name", "format", "timezone")}
    out |= {
        "log_hostname": f["host"].split(".")[0],
        "years": span,
        "intended_mtime": f.get("intended_mtime"),
        "long_queue_ids": long_ids,
        "lines": len(lines),
        "notes": f["notes"],
    }
    return out


# --------------------------------------------------------------------------------------------
# YAML: block style, strings JSON-quoted when needed (YAML reads them as double-quoted scalars)

PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/@+-]*")
YAML_WORDS = {"null", "true", "false", "yes", "no", "on", "off", "y", "n", "~"}


def yaml_scalar(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if PLAIN.fullmatch(text) and text.lower() not in YAML_WORDS and not text[0].isdigit():
        return text
    return json.dumps(text, ensure_ascii=False)


def yaml_lines(value: object, indent: int = 0) -> Iterator[str]:
    pad = " " * indent
    if isinstance(value, dict):
        for key, item in value.items():
            if item is None and key == "notes":
                continue
            if isinstance(item, dict | list) and item:
                yield f"{pad}{key}:"
                yield from yaml_lines(item, indent + 2)
            else:
                yield f"{pad}{key}: {yaml_flow(item)}"
    elif isinstance(value, list):
        for item in value:
            inner = list(yaml_lines(item, indent + 2))
            if isinstance(item, dict | list) and inner:
                yield f"{pad}- {inner[0].lstrip()}"
                yield from inner[1:]
            else:
                yield f"{pad}- {yaml_flow(item)}"


def yaml_flow(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(yaml_flow(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{}"
    return yaml_scalar(value)


HEADER = """\
# Postfix log fixtures: what is in each file and what each scenario must come out as.
# Generated by scripts/capture_postfix_logs.sh from real Postfix instances on 127.0.0.1 (the
# expectations live in scripts/postfix_fixture_scenarios.toml); do not edit by hand.
# Queue IDs differ on every capture; they are read back from the saved logs.
#
# files[].years: year of the first and of the last line (new-year and syslog cross 2025 -> 2026;
# intended_mtime is the mtime the capture gave the file, which git does not keep).
# recipients[]: expected final state per recipient and host (DESIGN.md's vocabulary);
# queue_id is where that state is logged (absent: refused before queueing); evidence are the
# lines that prove it (file:line: text).
# links: relay ("queued as" on another host), content-filter ("queued as" on the same host,
# orig_queue_id=), forward ("forwarded as"), bounce / delay-notice ("notification: NEWID").
"""


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    fixtures = Path(argv[1])
    raw, scenarios = read_catalogue()
    files: list[dict[str, Any]] = raw["file"]
    order = [f["path"] for f in files]
    groups = read_logs(fixtures, files)
    problems: list[str] = []
    described_files = [describe_file(f, groups, files, problems) for f in files]
    described = [check_scenario(sc, groups, order, problems) for sc in scenarios]
    for sc in described:
        states = ", ".join(f"{r['address']} {r['status']} ({r['host']})" for r in sc["recipients"])
        print(f"    {sc['name']:<20} {states}")
    if problems:
        print(f"{len(problems)} check(s) failed; scenarios.yaml not written:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    versions = sorted(
        {m[1] for lines in groups.values() for ln in lines if (m := VERSION.search(ln.text))}
    )
    doc = {
        "version": 1,
        "postfix_version": ", ".join(versions),
        "statuses": list(STATUSES),
        "captures": [
            {
                "name": k,
                "description": v,
                "files": [
                    p for p in order if next(f for f in files if f["path"] == p)["capture"] == k
                ],
            }
            for k, v in raw["captures"].items()
        ],
        "files": described_files,
        "scenarios": described,
    }
    out = fixtures / "scenarios.yaml"
    out.write_text(HEADER + "\n".join(yaml_lines(doc)) + "\n", encoding="utf-8")
    print(f"    all {len(described)} scenarios verified; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
