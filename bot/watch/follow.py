"""`mailtrace watch QUEUE_ID --server NAME`: wait at the terminal until the mail is done.

Strategy: the recipients come from the server's queue (or, when the mail has already left it,
from the logs); then the same look as a Slack watch (`poll.look`), every few seconds at first
and less often later (doubling up to a minute), never past the time limit. Bounded in count
and time: at most one look per interval until the deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.errors import MailtraceError, UsageError
from bot.live_queue import read_live_queue
from bot.settings import Settings
from bot.sources.source import LogSource
from bot.watch.poll import is_final, look
from bot.watch.store import Target

FIRST_WAIT_S = 2.0
LONGEST_WAIT_S = 60.0


@dataclass(frozen=True)
class Followed:
    targets: tuple[Target, ...]
    done: bool
    unreachable: str = ""


async def first_targets(
    settings: Settings, sources: Sequence[LogSource], server: str, queue_id: str
) -> list[Target]:
    """The queue ID's recipients: from the queue, else as the logs end them."""
    source = next((s for s in sources if s.name == server), None)
    if source is None:
        raise UsageError(f"no server named {server!r} in the configuration")
    [state] = await read_live_queue(
        settings.server(server), source.runner, {queue_id: None}, settings
    )
    if state.queue_name is not None and state.recipients:
        return [
            Target(server=server, queue_id=queue_id, address=r.address) for r in state.recipients
        ]
    seeker = Target(server=server, queue_id=queue_id, address="")
    found = await look(settings, sources, server, [seeker], datetime.now(UTC), everyone=True)
    if not found.targets:
        raise UsageError(f"{queue_id} is neither in {server}'s queue nor in its recent logs")
    return list(found.targets)


async def follow(
    settings: Settings,
    sources: Sequence[LogSource],
    server: str,
    queue_id: str,
    timeout_s: float,
    *,
    monotonic: Callable[[], float] = time.monotonic,
) -> Followed:
    """Look until every recipient is final or `timeout_s` has passed."""
    deadline = monotonic() + timeout_s
    started = datetime.now(UTC)
    targets = await first_targets(settings, sources, server, queue_id)
    wait = FIRST_WAIT_S
    unreachable = ""
    while not all(is_final(t) for t in targets):
        left = deadline - monotonic()
        if left <= 0:
            return Followed(tuple(targets), done=False, unreachable=unreachable)
        await asyncio.sleep(min(wait, left))
        wait = min(wait * 2, LONGEST_WAIT_S)
        try:
            found = await look(settings, sources, server, targets, started)
        except MailtraceError as exc:
            unreachable = str(exc)
            continue
        targets, unreachable = list(found.targets), found.unreachable
    return Followed(tuple(targets), done=True)
