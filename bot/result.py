"""The answer to one query, as values: what was found, what was searched, what went wrong.

Every renderer (terminal, JSON, Slack) and the diagnosis read these; only the search writes them.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from bot.query import Query
from bot.timings import Timings
from parsers.journey import Journey
from parsers.models import Message
from parsers.queue import LiveQueue


class FileCoverage(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str
    first_seen: datetime | None
    last_seen: datetime
    searched: bool
    readable: bool = True


class SourceCoverage(BaseModel):
    model_config = ConfigDict(frozen=True)

    server: str
    files: tuple[FileCoverage, ...] = ()
    lines_read: int = 0

    @property
    def span(self) -> tuple[datetime | None, datetime | None]:
        starts = [f.first_seen for f in self.files if f.first_seen is not None]
        ends = [f.last_seen for f in self.files]
        return (min(starts) if starts else None, max(ends) if ends else None)


class SourceFailure(BaseModel):
    model_config = ConfigDict(frozen=True)

    server: str
    reason: str
    detail: str


class Diagnosis(BaseModel):
    """One possible cause of an empty answer. `code` is stable (scripts match on it); `cause`,
    `evidence` and `next_step` are for people. `certain` causes are facts the search saw;
    the others are likely explanations. `for_operator`: the next step needs someone with
    access to the servers (in Slack, the reader is told whom to ask instead)."""

    model_config = ConfigDict(frozen=True)

    code: str
    cause: str
    evidence: tuple[str, ...] = ()
    next_step: str = ""
    certain: bool = True
    for_operator: bool = False


class NearMisses(BaseModel):
    """What the search saw around an empty answer: the target elsewhere, or something like it."""

    model_config = ConfigDict(frozen=True)

    other_times: tuple[datetime, ...] = ()  # the target on the asked day(s), outside the hours
    other_servers: tuple[str, ...] = ()  # servers left out with `on ...` that name the target
    other_role: tuple[str, ...] = ()  # lines that contain the target, not as sender/recipient
    similar: tuple[str, ...] = ()  # addresses or domains a few edits away, seen in the window
    connections: tuple[str, ...] = ()  # the client connected, no mail was queued


class SearchResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    query: Query
    window_start: datetime | None
    window_end: datetime | None
    messages: tuple[Message, ...] = ()
    journeys: tuple[Journey, ...] = ()  # the messages joined into mails: what answers tell
    searched: tuple[SourceCoverage, ...] = ()
    failures: tuple[SourceFailure, ...] = ()
    notes: tuple[str, ...] = ()
    diagnosis: tuple[Diagnosis, ...] = ()
    other_days: tuple[str, ...] = ()  # dates (asker's zone) the target appears outside the window
    near: NearMisses = NearMisses()
    default_days: int | None = None  # no date given: the last N days were searched (None: all)
    live: tuple[LiveQueue, ...] = ()  # the live queue of mail that is not final (bot.live_queue)
    duration_s: float = 0.0
    timings: Timings = Timings()  # where the time went (bot.timings)

    @property
    def unreadable_files(self) -> tuple[tuple[str, str], ...]:
        """(server, path) of every log file that covers the window but could not be read."""
        return tuple(
            (c.server, f.path)
            for c in self.searched
            for f in c.files
            if not f.readable and _overlaps(f, self.window_start, self.window_end)
        )

    @property
    def files_read(self) -> int:
        """Log files whose lines were really read (listed in the window, and readable)."""
        return sum(1 for c in self.searched for f in c.files if f.searched and f.readable)

    @property
    def complete(self) -> bool:
        """Every chosen server answered and every file covering the window was read."""
        return not self.failures and not self.unreadable_files

    @property
    def could_not_search(self) -> bool:
        """Nothing found, and nothing at all could be read: not an answer, a failure."""
        return not self.messages and not self.complete and self.files_read == 0


def _overlaps(file: FileCoverage, start: datetime | None, end: datetime | None) -> bool:
    if end is not None and file.first_seen is not None and file.first_seen >= end:
        return False
    return not (start is not None and file.last_seen < start)
