"""The live queue of one waiting recipient, in plain lines under its story.

Strategy: the logs say what happened until they were read; the queue says what is true now.
So the lines start with where the mail is now (which queue, or gone) and when that was checked,
then the queue's own reason, the next try and the give-up time. A deferred recipient's give-up
time is already told from the logs' side (with the server's lifetime when postconf was read),
so it is not repeated here. No markup: the renderers escape and decorate.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from parsers.journey import Outcome
from parsers.models import Status
from parsers.queue import LiveQueue


def _clock(moment: datetime, zone: tzinfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def _in(moment: datetime, now: datetime) -> str:
    seconds = int((moment - now).total_seconds())
    if seconds <= 0:
        return "any moment now"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = round(seconds / size)
            return f"in about {n} {unit}{'s' if n != 1 else ''}"
    return f"in {seconds} seconds"


def live_lines(o: Outcome, state: LiveQueue | None, zone: tzinfo) -> list[str]:
    """What the server's queue said about this recipient's message when it was checked."""
    if state is None:
        return []
    checked = f"checked {_clock(state.checked_at, zone)}"
    if state.queue_name is None:
        return [
            f"Not in {state.host}'s queue any more ({checked}): it ended after the logs were "
            "read. Ask again to see how."
        ]
    arrived = f" since {_clock(state.arrival_time, zone)}" if state.arrival_time else ""
    where = {
        "active": f"Being delivered right now: in {state.host}'s active queue{arrived}",
        "hold": f"In {state.host}'s hold queue{arrived}",
        "deferred": f"Still in {state.host}'s deferred queue{arrived}",
    }.get(state.queue_name, f"In {state.host}'s {state.queue_name} queue{arrived}")
    out = [f"{where} ({checked})."]
    reason = next(
        (r.delay_reason for r in state.recipients if r.address == o.address and r.delay_reason),
        None,
    )
    if reason and not (o.reason or "").endswith(reason):  # the logs' words are already shown
        out.append(f"The queue says: “{reason}”")
    if state.queue_name == "hold":
        out.append("It is not retried until an admin releases it (postsuper -H) or deletes it.")
    if state.forced_expire:
        out.append(
            "An admin asked Postfix to return it: it goes back to the sender at the next try."
        )
    if state.next_retry_estimate is not None:
        out.append(
            f"Next try expected around {_clock(state.next_retry_estimate, zone)} "
            f"({_in(state.next_retry_estimate, state.checked_at)})."
        )
    if state.gives_up_at is not None and o.status is not Status.DEFERRED:
        out.append(
            f"Postfix gives up at {_clock(state.gives_up_at, zone)} "
            f"(queue lifetime of {state.host}) and returns it to the sender."
        )
    return out
