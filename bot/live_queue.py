"""After the log search: is the mail still in the queue, when is the next try, when will it end?

Strategy: the recipients whose logs end without a final state (deferred, held, unknown) name a
server and a queue ID. Each such server is asked once, all servers at once, through the same
runner as its grep (SSH, or this machine for a `local: true` server): its queue settings from
`postconf` and the `postqueue -j` entries of those queue IDs, or the `postqueue -p` text where
`-j` is missing. The pure core (`parsers.queue`) reads the output and estimates the times; the
result gains one `LiveQueue` per queue ID, and a recipient's give-up time follows the server's
own maximal_queue_lifetime when postconf could be read. A server whose entry says `queue: false`
(its logs are copies) is not asked. A server that cannot be asked is one note in the answer;
the answer from the logs stays as it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

from bot.errors import MailtraceError, SourceError
from bot.result import SearchResult
from bot.settings import ServerConfig, Settings
from bot.sources import queue_commands
from bot.sources.runner import CommandRunner
from bot.sources.source import LogSource
from parsers.journey import Journey, Outcome
from parsers.models import Status
from parsers.queue import (
    QUEUE_ID,
    LiveQueue,
    entries_by_id,
    live_state,
    parse_postconf,
    parse_postqueue_json,
    parse_postqueue_text,
)

WAITING = (Status.DEFERRED, Status.HELD, Status.UNKNOWN)


class QueueUnreadable(SourceError):
    reason = "live queue not readable"


def waiting_queue_ids(result: SearchResult) -> dict[str, dict[str, datetime | None]]:
    """Per server, the queue IDs of recipients that are not final, with each one's last
    logged attempt (for the next-retry estimate)."""
    wanted: dict[str, dict[str, datetime | None]] = {}
    for journey in result.journeys:
        for o in journey.recipients:
            if o.status not in WAITING or o.temporary or o.queue_id is None:
                continue
            if not QUEUE_ID.match(o.queue_id):
                continue
            ids = wanted.setdefault(o.host, {})
            last = ids.get(o.queue_id)
            ids[o.queue_id] = o.at if last is None or (o.at is not None and o.at > last) else last
    return wanted


async def check_live_queues(
    result: SearchResult,
    settings: Settings,
    sources: Sequence[LogSource],
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> SearchResult:
    """The result with the live queue state of every not-final mail on servers that allow it."""
    runners = {s.name: s.runner for s in sources}
    wanted = {
        host: ids
        for host, ids in waiting_queue_ids(result).items()
        if host in runners and _allowed(settings, host)
    }
    if not wanted:
        return result
    notes: list[str] = []

    async def one(host: str) -> list[LiveQueue]:
        server = settings.server(host)
        try:
            return await read_live_queue(server, runners[host], wanted[host], settings, clock=clock)
        except MailtraceError as exc:
            detail = exc.detail if isinstance(exc, SourceError) else str(exc)
            notes.append(
                f"{host}: the live queue could not be read ({detail}); "
                "what it says about waiting mail comes from the logs only."
            )
            return []

    found = await asyncio.gather(*(one(h) for h in wanted))
    live = tuple(state for states in found for state in states)
    return result.model_copy(
        update={
            "live": live,
            "journeys": tuple(_with_give_up(j, live) for j in result.journeys),
            "notes": (*result.notes, *notes),
        }
    )


async def read_live_queue(
    server: ServerConfig,
    runner: CommandRunner,
    last_attempts: Mapping[str, datetime | None],
    settings: Settings,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> list[LiveQueue]:
    """Ask one server for these queue IDs; one LiveQueue each (queue_name None: gone)."""
    timeout = settings.limits_for(server).command_timeout
    ids = list(last_attempts)[: queue_commands.MAX_QUEUE_IDS]
    command = queue_commands.live_command(ids, server.postfix_config_dir, timeout)
    lines = [line async for line in runner.stream(command)]
    times = parse_postconf(lines)
    status, fatal = _status(lines, queue_commands.JSON_STATUS_PREFIX)
    if status == 0:
        entries = entries_by_id(parse_postqueue_json(lines))
    else:  # no -j (Postfix < 3.1), or it failed: the text listing
        command = queue_commands.text_queue_command(ids, server.postfix_config_dir, timeout)
        text = [line async for line in runner.stream(command)]
        text_status, _ = _status(text, queue_commands.TEXT_STATUS_PREFIX)
        if text_status != 0:
            detail = fatal or f"postqueue exited with status {text_status}"
            raise QueueUnreadable(server.name, detail)
        entries = entries_by_id(parse_postqueue_text(text, server.zone, clock()))
    checked_at = clock()
    return [
        live_state(
            server.name,
            queue_id,
            entries.get(queue_id),
            times=times,
            fallback_lifetime=server.queue_lifetime_delta,
            last_attempt=last_attempts[queue_id],
            checked_at=checked_at,
        )
        for queue_id in ids
    ]


def _status(lines: Sequence[str], prefix: str) -> tuple[int | None, str]:
    """The exit status the script printed after `prefix` (None: none printed), and the first
    "postqueue: fatal: ..." line."""
    status: int | None = None
    fatal = ""
    for line in lines:
        if line.startswith(prefix):
            tail = line.removeprefix(prefix).strip()
            status = int(tail) if tail.isdigit() else None
        elif line.startswith(queue_commands.FATAL_PREFIX) and not fatal:
            fatal = line.strip()
    return status, fatal


def _server(settings: Settings, name: str) -> ServerConfig | None:
    return next((s for s in settings.servers if s.name == name), None)


def _allowed(settings: Settings, name: str) -> bool:
    server = _server(settings, name)
    return server is not None and server.queue


def _with_give_up(journey: Journey, live: Sequence[LiveQueue]) -> Journey:
    """A deferred recipient gives up by the server's own lifetime, counted from its arrival in
    that server's queue, once postconf has said it."""
    states = {(s.host, s.queue_id): s for s in live}
    recipients: list[Outcome] = []
    for o in journey.recipients:
        state = states.get((o.host, o.queue_id or ""))
        if (
            state is not None
            and state.lifetime_from_server
            and state.gives_up_at is not None
            and o.status is Status.DEFERRED
            and not o.temporary
        ):
            o = o.model_copy(update={"gives_up_at": state.gives_up_at})
        recipients.append(o)
    return journey.model_copy(update={"recipients": tuple(recipients)})
