"""Raw log lines of recent answers, for the "Show log lines" button.

Strategy: the button's value is `KEY:INDEX`, a random key for one answer and the index of a
message in it; the lines themselves stay here, in memory, never in Slack until asked for. The
cache is bounded (answers, total lines, age) and oldest entries go first. It does not survive a
restart: a button on an older answer then says so and suggests asking again.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

MAX_ANSWERS = 200
MAX_TOTAL_LINES = 500_000
MAX_AGE_S = 24 * 3600.0


@dataclass(frozen=True)
class AnswerLines:
    """Where an answer was posted and each message's (title, raw lines)."""

    channel: str
    thread_ts: str | None  # None when the answer went through response_url
    messages: tuple[tuple[str, tuple[str, ...]], ...]

    @property
    def line_count(self) -> int:
        return sum(len(lines) for _, lines in self.messages)


class RawLinesCache:
    def __init__(
        self,
        *,
        max_answers: int = MAX_ANSWERS,
        max_total_lines: int = MAX_TOTAL_LINES,
        max_age_s: float = MAX_AGE_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_answers = max_answers
        self.max_total_lines = max_total_lines
        self.max_age_s = max_age_s
        self.monotonic = monotonic
        self._entries: OrderedDict[str, tuple[float, AnswerLines]] = OrderedDict()
        self._lines = 0

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, answer: AnswerLines) -> str:
        """Keep an answer's lines; returns the key for its buttons."""
        key = secrets.token_urlsafe(12)
        self._entries[key] = (self.monotonic(), answer)
        self._lines += answer.line_count
        self._evict()
        return key

    def get(self, key: str) -> AnswerLines | None:
        """The answer's lines, or None when they were never here or have been dropped."""
        self._evict()
        found = self._entries.get(key)
        return found[1] if found is not None else None

    def _evict(self) -> None:
        now = self.monotonic()
        while self._entries:
            key, (stored, answer) = next(iter(self._entries.items()))
            too_many = len(self._entries) > self.max_answers or self._lines > self.max_total_lines
            if not too_many and now - stored < self.max_age_s:
                break
            del self._entries[key]
            self._lines -= answer.line_count
