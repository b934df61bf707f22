"""Watches kept in an embedded SQLite file, so that a restart of the bot continues them.

Strategy: one table, one row per watch; the targets (server, queue ID, recipient) are a JSON
column because they are only ever read and written with their watch. Every change is its own
short transaction (the bot is one process on one event loop; SQLite calls take microseconds on
a local disk). The limits per user and per workspace are checked in the same transaction that
adds the watch, so two presses at once cannot both slip under a limit.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from bot.settings import Settings

ACTIVE = "active"


class WatchState(StrEnum):
    ACTIVE = "active"
    DONE = "done"  # every recipient reached a final state
    EXPIRED = "expired"  # give-up time + a day passed first
    CANCELLED = "cancelled"


class Target(BaseModel):
    """One recipient being watched: where its copy waits, and what was last seen of it."""

    model_config = ConfigDict(frozen=True)

    server: str
    queue_id: str
    address: str
    status: str = "deferred"  # parsers.models.Status values
    detail: str = ""  # the last words about it (a queue's reason, a DSN reason)


class Watch(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int = 0
    team: str
    user: str
    channel: str
    thread_ts: str
    lang: str = "en"
    zone: str = "UTC"
    targets: tuple[Target, ...]
    created_at: datetime
    expires_at: datetime
    next_poll_at: datetime
    interval_s: float
    unreachable_said: bool = False
    state: WatchState = WatchState.ACTIVE


class WatchLimit(Exception):
    """Adding the watch would pass a limit; `which` is "user" or "workspace"."""

    def __init__(self, which: str, limit: int) -> None:
        super().__init__(f"{which} limit of {limit} watches")
        self.which = which
        self.limit = limit


_SCHEMA = """
CREATE TABLE IF NOT EXISTS watches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    team TEXT NOT NULL, user TEXT NOT NULL, channel TEXT NOT NULL, thread_ts TEXT NOT NULL,
    lang TEXT NOT NULL, zone TEXT NOT NULL, targets TEXT NOT NULL,
    created_at TEXT NOT NULL, expires_at TEXT NOT NULL, next_poll_at TEXT NOT NULL,
    interval_s REAL NOT NULL, unreachable_said INTEGER NOT NULL, state TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS watches_state ON watches (state, next_poll_at);
"""
_COLUMNS = (
    "team, user, channel, thread_ts, lang, zone, targets, created_at, expires_at, "
    "next_poll_at, interval_s, unreachable_said, state"
)


def default_database(
    settings: Settings, *, beside: Path | None = None, environ: dict[str, str] | None = None
) -> Path:
    """The configured file; else in `beside` or the audit log's directory; else the user's
    state directory."""
    env = dict(os.environ) if environ is None else environ
    if settings.watch.database:
        path = Path(settings.watch.database).expanduser()
        return path if path.is_absolute() else settings.base_dir / path
    if beside is not None:
        return beside / "watches.sqlite3"
    audit = settings.slack.audit_log if settings.slack else None
    if audit:
        path = Path(audit).expanduser()
        return (path if path.is_absolute() else settings.base_dir / path).parent / (
            "watches.sqlite3"
        )
    state = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "mailtrace" / "watches.sqlite3"


class WatchStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.executescript(_SCHEMA)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=5)) as db, db:
            yield db

    def add(self, watch: Watch, *, per_user: int, per_workspace: int) -> Watch:
        """Store a new active watch; WatchLimit when its user or workspace has enough."""
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            for which, column, value, limit in (
                ("user", "user", watch.user, per_user),
                ("workspace", "team", watch.team, per_workspace),
            ):
                (count,) = db.execute(
                    f"SELECT count(*) FROM watches WHERE state = ? AND {column} = ?",  # noqa: S608
                    (ACTIVE, value),
                ).fetchone()
                if count >= limit:
                    raise WatchLimit(which, limit)
            cursor = db.execute(
                f"INSERT INTO watches ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",  # noqa: S608
                _row(watch),
            )
            return watch.model_copy(update={"id": int(cursor.lastrowid or 0)})

    def save(self, watch: Watch) -> None:
        """Write back a watch's progress (targets, next poll, interval, state)."""
        sets = ", ".join(f"{c.strip()} = ?" for c in _COLUMNS.split(","))
        with self._db() as db:
            db.execute(f"UPDATE watches SET {sets} WHERE id = ?", (*_row(watch), watch.id))  # noqa: S608

    def get(self, watch_id: int) -> Watch | None:
        with self._db() as db:
            row = db.execute(
                f"SELECT id, {_COLUMNS} FROM watches WHERE id = ?",  # noqa: S608
                (watch_id,),
            ).fetchone()
        return _watch(row) if row else None

    def active(self) -> list[Watch]:
        """Every active watch, the next to poll first."""
        with self._db() as db:
            rows = db.execute(
                f"SELECT id, {_COLUMNS} FROM watches WHERE state = ? ORDER BY next_poll_at",  # noqa: S608
                (ACTIVE,),
            ).fetchall()
        return [_watch(row) for row in rows]


def _row(w: Watch) -> tuple[object, ...]:
    targets = json.dumps([t.model_dump() for t in w.targets])
    return (
        w.team,
        w.user,
        w.channel,
        w.thread_ts,
        w.lang,
        w.zone,
        targets,
        w.created_at.astimezone(UTC).isoformat(),
        w.expires_at.astimezone(UTC).isoformat(),
        w.next_poll_at.astimezone(UTC).isoformat(),
        w.interval_s,
        int(w.unreachable_said),
        w.state.value,
    )


def _watch(row: tuple[object, ...]) -> Watch:
    (wid, team, user, channel, ts, lang, zone, targets, created, expires, due, interval) = row[:12]
    said, state = row[12:14]
    return Watch(
        id=int(str(wid)),
        team=str(team),
        user=str(user),
        channel=str(channel),
        thread_ts=str(ts),
        lang=str(lang),
        zone=str(zone),
        targets=tuple(Target.model_validate(t) for t in json.loads(str(targets))),
        created_at=datetime.fromisoformat(str(created)),
        expires_at=datetime.fromisoformat(str(expires)),
        next_poll_at=datetime.fromisoformat(str(due)),
        interval_s=float(str(interval)),
        unreachable_said=bool(said),
        state=WatchState(str(state)),
    )
