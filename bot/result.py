"""The answer to one query, as values: what was found, what was searched, what went wrong.

Every renderer (terminal, JSON, Slack) and the diagnosis read these; only the search writes them.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from bot.query import Query
from parsers.journey import Journey
from parsers.models import Message


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
    model_config = ConfigDict(frozen=True)

    cause: str
    evidence: tuple[str, ...] = ()
    next_step: str = ""


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
    other_days: tuple[str, ...] = ()  # dates (server zone) the target appears outside the window
    duration_s: float = 0.0
