"""Where a query's time goes: per phase, and per server with its remote commands.

Strategy: `run_search` opens a `Stopwatch` for the question and makes it current in a context
variable; the tasks it gathers (one per server) inherit it, so a source shared by concurrent
questions (the bot's warm pool) counts each command for the question that sent it. Phases
add up when they run more than once (hop rounds). The result carries a frozen `Timings`; the
JSON shows it, and the search logs it at debug level.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from pydantic import BaseModel, ConfigDict

# Per server, in the order the search meets them (see bot/search.py's Strategy).
# "connect" (SSH set-up) is also part of the phase whose first command waited for it.
SERVER_PHASES = ("connect", "list_pass1", "pass2", "followup", "hops", "nearmiss")


class ServerTimings(BaseModel):
    """One server's share: seconds per phase (wall time, commands and parsing together), and
    the number of remote commands sent."""

    model_config = ConfigDict(frozen=True)

    server: str
    phases: dict[str, float] = {}
    commands: int = 0


class Timings(BaseModel):
    """A question's time: the whole, its phases, and each server's share."""

    model_config = ConfigDict(frozen=True)

    total_s: float = 0.0
    phases: dict[str, float] = {}
    servers: tuple[ServerTimings, ...] = ()


class Stopwatch:
    """Collects one question's timings while it runs."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.phases: dict[str, float] = {}
        self.server_phases: dict[str, dict[str, float]] = {}
        self.commands: dict[str, int] = {}

    @contextmanager
    def phase(self, name: str, server: str | None = None) -> Iterator[None]:
        """Time the block as `name` (of `server`, or of the whole question)."""
        began = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - began, server)

    def add(self, name: str, seconds: float, server: str | None = None) -> None:
        table = self.phases if server is None else self.server_phases.setdefault(server, {})
        table[name] = table.get(name, 0.0) + seconds

    def timings(self) -> Timings:
        names = sorted(set(self.server_phases) | set(self.commands))
        return Timings(
            total_s=round(time.perf_counter() - self.started, 3),
            phases={k: round(v, 3) for k, v in self.phases.items()},
            servers=tuple(
                ServerTimings(
                    server=name,
                    phases={
                        k: round(v, 3)
                        for k, v in sorted(
                            self.server_phases.get(name, {}).items(),
                            key=lambda kv: _order(kv[0]),
                        )
                    },
                    commands=self.commands.get(name, 0),
                )
                for name in names
            ),
        )


def _order(phase: str) -> int:
    return SERVER_PHASES.index(phase) if phase in SERVER_PHASES else len(SERVER_PHASES)


_CURRENT: ContextVar[Stopwatch | None] = ContextVar("mailtrace_stopwatch", default=None)


@contextmanager
def measuring() -> Iterator[Stopwatch]:
    """A stopwatch current for this task and the tasks it starts."""
    watch = Stopwatch()
    token = _CURRENT.set(watch)
    try:
        yield watch
    finally:
        _CURRENT.reset(token)


def count_command(server: str) -> None:
    """One more remote command for `server`, in the current question (if any)."""
    watch = _CURRENT.get()
    if watch is not None:
        watch.commands[server] = watch.commands.get(server, 0) + 1


@contextmanager
def phase(name: str, server: str | None = None) -> Iterator[None]:
    """Time the block in the current question (nothing without one)."""
    watch = _CURRENT.get()
    if watch is None:
        yield
        return
    with watch.phase(name, server):
        yield


def started() -> float:
    """The clock now, for `add` (where a `with phase` block would re-indent much code)."""
    return time.perf_counter()


def add(name: str, since: float, server: str | None = None) -> None:
    """Count the time from `since` (see `started`) to now as `name`."""
    watch = _CURRENT.get()
    if watch is not None:
        watch.add(name, time.perf_counter() - since, server)


def describe(timings: Timings) -> str:
    """One line for the debug log: 'total 0.384 s; search 0.35, ...; mx1: list_pass1 0.2 ...'."""
    parts = [f"total {timings.total_s:.3f} s"]
    parts += [f"{k} {v:.3f}" for k, v in timings.phases.items()]
    for s in timings.servers:
        spent = " ".join(f"{k} {v:.3f}" for k, v in s.phases.items())
        parts.append(f"{s.server}: {spent} ({s.commands} commands)")
    return "; ".join(parts)
