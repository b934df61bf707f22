"""One look at watched recipients: the server's live queue first, the logs when it has gone.

Strategy: all the queue IDs watched on one server are asked in one `postqueue` round trip
(`read_live_queue`). A recipient the queue still lists is still waiting, in that queue. A
recipient the queue no longer lists has ended since, and the logs say how: the queue ID is
searched like any /mailtrace query (pass 1 and pass 2, hops followed), over the days since the
watch began, and the recipient's end of the road is its new state. Logs that do not show the
end yet (the queue emptied a moment before the line was written) leave it waiting for the next
look. A server that cannot be asked is "unreachable" for this look; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.errors import MailtraceError
from bot.i18n import ENGLISH
from bot.live_queue import read_live_queue
from bot.query import parse_query
from bot.search import run_search
from bot.settings import Settings
from bot.sources import queue_commands
from bot.sources.source import LogSource
from bot.watch.store import Target
from parsers.models import Status
from parsers.queue import LiveQueue

FINAL = frozenset(
    {Status.SENT, Status.BOUNCED, Status.EXPIRED, Status.DELETED, Status.REJECTED, Status.DISCARDED}
)
QUEUED = {"deferred": Status.DEFERRED, "hold": Status.HELD, "active": Status.DEFERRED}


def is_final(target: Target) -> bool:
    return Status(target.status) in FINAL


@dataclass(frozen=True)
class Look:
    """What one look at a server found: the targets' new states, or why it could not look."""

    targets: tuple[Target, ...]
    unreachable: str = ""  # the reason, when the server could not be asked


async def look(
    settings: Settings,
    sources: Sequence[LogSource],
    server: str,
    targets: Sequence[Target],
    since: datetime,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    everyone: bool = False,
) -> Look:
    """The targets (all on `server`) as they are now. With `everyone`, a target whose address
    is empty stands for every recipient the logs show for its queue ID (`mailtrace watch`)."""
    source = next((s for s in sources if s.name == server), None)
    if source is None:
        return Look(tuple(targets), unreachable=f"{server} is not configured any more")
    waiting = [t for t in targets if not is_final(t)]
    ids = list(dict.fromkeys(t.queue_id for t in waiting))[: queue_commands.MAX_QUEUE_IDS]
    if not ids:
        return Look(tuple(targets))
    try:
        states = await read_live_queue(
            settings.server(server), source.runner, dict.fromkeys(ids), settings, clock=clock
        )
    except MailtraceError as exc:
        return Look(tuple(targets), unreachable=getattr(exc, "detail", str(exc)))
    by_id = {s.queue_id: s for s in states}
    updated: dict[tuple[str, str], Target] = {}
    ended: list[Target] = []
    for t in waiting:
        state = by_id.get(t.queue_id)
        if state is not None and _still_listed(state, t.address):
            updated[(t.queue_id, t.address)] = _queued(t, state)
        else:
            ended.append(t)
    for queue_id in dict.fromkeys(t.queue_id for t in ended):
        mine = [t for t in ended if t.queue_id == queue_id]
        try:
            ends = await _ends_in_logs(settings, sources, server, queue_id, since, clock())
        except MailtraceError as exc:
            return Look(tuple(targets), unreachable=getattr(exc, "detail", str(exc)))
        if everyone:
            mine = [
                t.model_copy(update={"address": address}) if not t.address else t
                for address in ends.primary
                for t in mine
            ] or [t for t in mine if t.address]
        for t in mine:
            status, detail = ends.get(t.address, (None, ""))
            if status is not None and status in FINAL:
                t = t.model_copy(update={"status": status.value, "detail": detail})
            updated[(t.queue_id, t.address)] = t
    if everyone:
        return Look(tuple(updated.values()) or tuple(t for t in targets if t.address))
    return Look(tuple(updated.get((t.queue_id, t.address), t) for t in targets))


def _still_listed(state: LiveQueue, address: str) -> bool:
    """In the queue, and (when the queue names its recipients) still for this recipient."""
    if state.queue_name is None:
        return False
    addresses = {r.address.lower() for r in state.recipients}
    return not addresses or address.lower() in addresses


def _queued(t: Target, state: LiveQueue) -> Target:
    reason = next(
        (r.delay_reason for r in state.recipients if r.address.lower() == t.address.lower()), None
    )
    status = QUEUED.get(state.queue_name or "", Status.DEFERRED)
    return t.model_copy(update={"status": status.value, "detail": reason or t.detail})


class Ends(dict[str, tuple[Status, str]]):
    """Per recipient address (and the address the sender used): its end of the road."""

    primary: list[str]


async def _ends_in_logs(
    settings: Settings,
    sources: Sequence[LogSource],
    server: str,
    queue_id: str,
    since: datetime,
    now: datetime,
) -> Ends:
    """Per recipient address (and the address the sender used), its end of the road."""
    zone = settings.zone
    first = (since - timedelta(days=1)).astimezone(zone).date()
    last = now.astimezone(zone).date()
    query = parse_query(f"{queue_id} {first}..{last} on {server}", now=now, zone=zone)
    result = await run_search(query, settings, sources, now=now, tr=ENGLISH)
    failures = [f for f in result.failures if f.server == server]
    if failures and not result.journeys:
        raise MailtraceError(f"{failures[0].reason}: {failures[0].detail}")
    ends = Ends()
    ends.primary = []
    for journey in result.journeys:
        for o in journey.recipients:
            end = (o.status, o.reason or "")
            ends.primary.append(o.address)
            for address in filter(None, (o.address, o.orig_to)):
                ends[address.lower()] = end
                ends[address] = end
    return ends
