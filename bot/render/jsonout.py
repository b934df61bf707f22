"""JSON for scripts: one document per query. The schema is documented in docs/json-schema.md."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bot.result import SearchResult

SCHEMA_VERSION = 2  # 2: journeys[]; every time written with an offset (+00:00, never Z)


def result_document(result: SearchResult) -> dict[str, Any]:
    """The JSON document as Python data (stable field names, ISO 8601 times with offsets)."""
    data = _times_with_offsets(result.model_dump(mode="python"))
    searched = []
    for coverage in result.searched:
        first, last = coverage.span
        searched.append(
            {
                "server": coverage.server,
                "start": first.isoformat() if first else None,
                "end": last.isoformat() if last else None,
                "lines_read": coverage.lines_read,
                "files": [_times_with_offsets(f.model_dump()) for f in coverage.files],
            }
        )
    return {
        "schema_version": SCHEMA_VERSION,
        "query": {
            "text": result.query.text,
            "kind": result.query.kind.value,
            "target": result.query.target,
            "servers": list(result.query.servers),
        },
        "window": {"start": data["window_start"], "end": data["window_end"]},
        "journeys": data["journeys"],
        "messages": _with_queue(data["messages"], result),
        "searched": searched,
        "failures": data["failures"],
        "notes": data["notes"],
        "diagnosis": data["diagnosis"],
        "other_days": data["other_days"],
        "duration_s": data["duration_s"],
    }


QUEUE_FIELDS = (
    "queue_name",
    "arrival_time",
    "recipients",
    "gives_up_at",
    "next_retry_estimate",
    "checked_at",
)


def _with_queue(messages: list[dict[str, Any]], result: SearchResult) -> list[dict[str, Any]]:
    """Each message with `queue`: its live queue state when it was checked, else null."""
    live = {(s.host, s.queue_id): s for s in result.live}
    out = []
    for message in messages:
        state = live.get((message["host"], message["queue_id"] or ""))
        queue = None
        if state is not None:
            dumped = _times_with_offsets(state.model_dump(mode="python"))
            queue = {key: dumped[key] for key in QUEUE_FIELDS}
        out.append({**message, "queue": queue})
    return out


def _times_with_offsets(value: Any) -> Any:
    """Python data -> JSON data, every datetime as ISO 8601 with its offset (one format)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _times_with_offsets(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_times_with_offsets(item) for item in value]
    return value


def render_json(result: SearchResult) -> str:
    return json.dumps(result_document(result), indent=2, ensure_ascii=False) + "\n"
