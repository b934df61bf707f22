"""Per-user rate limit: at most N searches in any sliding minute.

Strategy: keep each user's recent start times (monotonic clock, injectable for tests) and drop
those older than the window before deciding. A refusal says when the next search is allowed.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

WINDOW_S = 60.0


class RateLimiter:
    def __init__(self, per_minute: int, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.monotonic = monotonic
        self._starts: dict[str, deque[float]] = {}

    def acquire(self, user: str) -> float | None:
        """Count a search for `user`; None when allowed, else seconds until one is allowed."""
        now = self.monotonic()
        starts = self._starts.setdefault(user, deque())
        while starts and now - starts[0] >= WINDOW_S:
            starts.popleft()
        if len(starts) >= self.per_minute:
            return max(0.0, WINDOW_S - (now - starts[0]))
        starts.append(now)
        self._forget_idle(now)
        return None

    def _forget_idle(self, now: float) -> None:
        if len(self._starts) < 1024:
            return
        for user in [u for u, s in self._starts.items() if not s or now - s[-1] >= WINDOW_S]:
            del self._starts[user]
