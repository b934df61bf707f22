"""The audit log: one JSON line per request, answered or refused.

Strategy: every request ends in exactly one `AuditEntry` (who, where, what was asked, which
servers were searched, what came back, how long it took, and the outcome). Entries are appended
to the configured file, or logged on the `mailtrace.audit` logger when there is none. A failing
audit write (disk full, file unwritable) never turns into a failed answer: it is logged loudly
once, and again only after a write has succeeded in between, when the number of entries lost
meanwhile is logged. The entries themselves never go to the service log: the audit log stays the
one place that records who asked what.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from bot.result import SearchResult
from bot.settings import Settings

logger = logging.getLogger("mailtrace.audit")


class Outcome(StrEnum):
    ANSWERED = "answered"  # messages found and posted, every server searched
    INCOMPLETE = "incomplete"  # posted, but a server failed or a file was unreadable (reason)
    NOTHING_FOUND = "nothing_found"  # every log read, nothing matched (the diagnosis was posted)
    COULDNT_SEARCH = "couldnt_search"  # no log could be read at all: no answer (reason: why)
    HELP = "help"
    USAGE_ERROR = "usage_error"
    REFUSED = "refused"  # not allowed: user, user group or channel
    RATE_LIMITED = "rate_limited"
    SHUTTING_DOWN = "shutting_down"
    FAILED = "failed"  # an error inside the search; the thread says so
    CANCELLED = "cancelled"  # shutdown cancelled the search
    LINES_SHOWN = "lines_shown"  # the "Show log lines" button
    LINES_EXPIRED = "lines_expired"  # the button, after the lines left the cache
    WATCH_STARTED = "watch_started"  # "Tell me when it's done"
    WATCH_LIMITED = "watch_limited"  # refused: the user's or the workspace's limit
    WATCH_DONE = "watch_done"  # every recipient final; the thread was told
    WATCH_EXPIRED = "watch_expired"  # give-up time + a day passed first
    WATCH_CANCELLED = "watch_cancelled"
    WATCH_UNREACHABLE = "watch_unreachable"  # a server could not be asked (said once)
    RETRY_REQUESTED = "retry_requested"  # "Retry now": postqueue -i ran


def search_outcome(result: SearchResult) -> tuple[Outcome, str]:
    """How a posted search is audited, and the reason: an answer missing a server or a file is
    never audited as complete, and one where nothing could be read is not "nothing found"."""
    if result.could_not_search:
        outcome = Outcome.COULDNT_SEARCH
    elif not result.complete:
        outcome = Outcome.INCOMPLETE
    else:
        return (Outcome.ANSWERED if result.messages else Outcome.NOTHING_FOUND), ""
    reasons = [f"{f.server}: {f.reason}" for f in result.failures]
    unreadable = result.unreadable_files
    if unreadable:
        servers = ", ".join(dict.fromkeys(server for server, _ in unreadable))
        count = len(unreadable)
        reasons.append(f"{servers}: {count} log file{'s' if count != 1 else ''} unreadable")
    return outcome, "; ".join(reasons)[:300]


def search_counts(result: SearchResult | None) -> tuple[tuple[str, ...], dict[str, int]]:
    """What an entry says a search read and found: the servers searched, and the number of
    mails, messages and failures, and of mails per verdict (delivered, bounced, ...)."""
    if result is None:
        return (), {}
    counts = {
        "mails": len(result.journeys),
        "messages": len(result.messages),
        "failures": len(result.failures),
    }
    for journey in result.journeys:
        counts[journey.verdict.value] = counts.get(journey.verdict.value, 0) + 1
    return tuple(c.server for c in result.searched), counts


class AuditEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    user: str
    channel: str
    action: str = "command"  # "command" or "show_lines"
    query: str = ""
    outcome: Outcome
    allowed: bool = True
    reason: str = ""  # why refused, or what failed
    servers: tuple[str, ...] = ()
    counts: dict[str, int] = Field(default_factory=dict)  # messages, per status, failures
    duration_s: float = 0.0
    delivery: str = ""  # "thread", "respond" or "" (answered in the acknowledgement)


class AuditLog:
    """Appends entries to a JSON lines file (or the log when `path` is None)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lost = 0  # entries not written since the last write that succeeded

    @classmethod
    def from_settings(cls, settings: Settings) -> AuditLog:
        configured = settings.slack.audit_log if settings.slack else None
        if configured is None:
            return cls(None)
        path = Path(configured).expanduser()
        return cls(path if path.is_absolute() else settings.base_dir / path)

    def record(self, entry: AuditEntry) -> None:
        """Append one entry. Called on the event loop only, so lines never interleave."""
        line = entry.model_dump_json()
        if self.path is None:
            logger.info("audit %s", line)
            return
        try:
            with self.path.open("a", encoding="utf-8") as out:
                out.write(line + "\n")
        except OSError as exc:
            if not self._lost:
                logger.error(
                    "audit_write_failed path=%s error=%s (answers go on; entries are lost until "
                    "a write succeeds)",
                    self.path,
                    exc.strerror or type(exc).__name__,
                )
            self._lost += 1
            return
        if self._lost:
            logger.warning("audit_write_recovered path=%s lost_entries=%d", self.path, self._lost)
            self._lost = 0
