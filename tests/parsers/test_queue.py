"""The live queue readers and estimates, on output captured from a real Postfix 3.7 on loopback.

The fixtures hold one deferred message (two recipients, a closed next-hop port) and one message
placed on hold, as `postqueue -j`, `postqueue -p` and `postconf` printed them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from parsers.queue import (
    LiveQueue,
    QueueEntry,
    QueueTimes,
    default_queue_times,
    live_state,
    next_retry,
    parse_postconf,
    parse_postqueue_json,
    parse_postqueue_text,
    postfix_duration,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "postfix" / "queue"
ARRIVAL = datetime(2026, 12, 1, 0, 58, 14, tzinfo=UTC)
CHECKED = datetime(2026, 12, 1, 1, 0, 0, tzinfo=UTC)


def _lines(name: str) -> list[str]:
    return (FIXTURES / name).read_text().splitlines()


def test_json_listing_gives_queue_arrival_and_each_recipients_reason() -> None:
    """`postqueue -j` lines become entries with their queue, arrival time and delay reasons."""
    entries = {e.queue_id: e for e in parse_postqueue_json(_lines("postqueue-j.txt"))}
    deferred, held = entries["7BCD520D1AE"], entries["7D4A020CC93"]
    assert (deferred.queue_name, held.queue_name) == ("deferred", "hold")
    assert deferred.arrival_time == ARRIVAL
    assert deferred.sender == "queued@example.net"
    assert [r.address for r in deferred.recipients] == ["x@closed.test", "y@closed.test"]
    assert deferred.recipients[0].delay_reason is not None
    assert deferred.recipients[0].delay_reason.endswith(":49971: Connection refused")


def test_text_listing_reads_the_same_as_the_json_listing() -> None:
    """`postqueue -p` text (for Postfix < 3.1) gives the same entries as `-j`, year included."""
    text = parse_postqueue_text(_lines("postqueue-p.txt"), UTC, CHECKED)
    assert text == parse_postqueue_json(_lines("postqueue-j.txt"))


def test_text_listing_year_comes_from_the_weekday() -> None:
    """A yearless arrival a year back is dated by its weekday, never in the future."""
    later = datetime(2027, 11, 30, tzinfo=UTC)  # Dec 1 2027 is a Wednesday, 2026 a Tuesday
    entries = parse_postqueue_text(_lines("postqueue-p.txt"), UTC, later)
    assert {e.arrival_time for e in entries} == {ARRIVAL}


def test_text_listing_arrival_is_in_the_servers_zone() -> None:
    """The text listing's local arrival time is read in the server's zone."""
    tokyo = ZoneInfo("Asia/Tokyo")
    entries = parse_postqueue_text(_lines("postqueue-p.txt"), tokyo, CHECKED)
    assert entries[0].arrival_time == ARRIVAL - timedelta(hours=9)


def test_text_listing_skips_noise_and_reads_the_empty_queue() -> None:
    """An empty queue and stray lines give no entries; a JSON reader skips non-JSON lines."""
    assert parse_postqueue_text(["Mail queue is empty"], UTC, CHECKED) == []
    assert parse_postqueue_json(["postqueue: fatal: Queue report unavailable", "{broken"]) == []


def test_postconf_values_follow_units_and_references() -> None:
    """postconf's values become durations; `$maximal_queue_lifetime` is followed."""
    times = parse_postconf(_lines("postconf.txt"))
    assert times == QueueTimes(
        maximal_queue_lifetime=timedelta(hours=2),
        bounce_queue_lifetime=timedelta(hours=2),
        minimal_backoff_time=timedelta(hours=1),
        maximal_backoff_time=timedelta(hours=2),
        queue_run_delay=timedelta(seconds=300),
    )


def test_postconf_with_a_missing_value_is_unknown() -> None:
    """A missing or malformed value means the settings are unknown, not guessed."""
    lines = _lines("postconf.txt")
    assert parse_postconf(lines[1:]) is None
    assert parse_postconf(["maximal_queue_lifetime = soon", *lines[1:]]) is None


def test_bare_numbers_take_the_parameters_default_unit() -> None:
    """A bare number is days for a lifetime and seconds for a backoff time (postconf(5))."""
    assert postfix_duration("5") == timedelta(days=5)
    assert postfix_duration("300", "s") == timedelta(seconds=300)
    assert postfix_duration("1w") == timedelta(weeks=1)
    assert postfix_duration("5 days") is None


def test_next_retry_waits_the_time_in_queue_within_the_backoff_bounds() -> None:
    """After an attempt the wait is the time in the queue, at least minimal_backoff_time and at
    most maximal_backoff_time."""
    times = default_queue_times()  # 300 s .. 4000 s
    early = ARRIVAL + timedelta(seconds=10)
    assert next_retry(ARRIVAL, early, times, early) == early + timedelta(seconds=300)
    mid = ARRIVAL + timedelta(seconds=1000)
    assert next_retry(ARRIVAL, mid, times, mid) == mid + timedelta(seconds=1000)
    late = ARRIVAL + timedelta(days=1)
    assert next_retry(ARRIVAL, late, times, late) == late + timedelta(seconds=4000)


def test_next_retry_that_is_due_comes_with_the_next_queue_scan() -> None:
    """When the wait has passed, the try comes at the latest one queue_run_delay after the check."""
    times = default_queue_times()
    checked = ARRIVAL + timedelta(hours=3)
    assert next_retry(ARRIVAL, ARRIVAL, times, checked) == checked + timedelta(seconds=300)


def _entry(queue_name: str, sender: str = "queued@example.net") -> QueueEntry:
    return QueueEntry(
        queue_id="7BCD520D1AE", queue_name=queue_name, arrival_time=ARRIVAL, sender=sender
    )


def test_live_state_gives_up_by_the_servers_lifetime() -> None:
    """A deferred message gives up at arrival + the server's maximal_queue_lifetime."""
    times = parse_postconf(_lines("postconf.txt"))
    state = live_state(
        "mx-a",
        "7BCD520D1AE",
        _entry("deferred"),
        times=times,
        fallback_lifetime=timedelta(days=5),
        last_attempt=ARRIVAL,
        checked_at=CHECKED,
    )
    assert state.gives_up_at == ARRIVAL + timedelta(hours=2)
    assert state.lifetime_from_server
    assert state.next_retry_estimate == ARRIVAL + timedelta(hours=1)


def test_live_state_without_postconf_uses_the_configured_lifetime() -> None:
    """Without postconf's answer the configured queue_lifetime counts (and bounces use it too)."""
    state = live_state(
        "mx-a",
        "7BCD520D1AE",
        _entry("deferred", sender=""),
        times=None,
        fallback_lifetime=timedelta(days=3),
        last_attempt=None,
        checked_at=CHECKED,
    )
    assert state.gives_up_at == ARRIVAL + timedelta(days=3)
    assert not state.lifetime_from_server


def _checked(entry: QueueEntry | None) -> LiveQueue:
    return live_state(
        "mx-a",
        "7BCD520D1AE",
        entry,
        times=None,
        fallback_lifetime=timedelta(days=5),
        last_attempt=ARRIVAL,
        checked_at=CHECKED,
    )


def test_live_state_of_held_active_and_gone_messages() -> None:
    """Held mail has no retry or give-up time, active mail no retry; gone mail has no queue."""
    held = _checked(_entry("hold"))
    assert (held.queue_name, held.gives_up_at, held.next_retry_estimate) == ("hold", None, None)
    active = _checked(_entry("active"))
    assert active.next_retry_estimate is None
    assert active.gives_up_at == ARRIVAL + timedelta(days=5)
    gone = _checked(None)
    assert gone.queue_name is None
    assert gone.arrival_time is None
