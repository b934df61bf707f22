"""The /mailtrace grammar: targets, dates, times, servers, and clear usage errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.errors import UsageError
from bot.query import TargetKind, parse_query

NOW = datetime(2024, 5, 14, 8, 30, tzinfo=UTC)
TOKYO = ZoneInfo("Asia/Tokyo")


def test_address_and_date_in_the_askers_zone() -> None:
    """A date is a whole day in the asker's time zone."""
    q = parse_query("Sender2@Example.NET 2024-05-13", now=NOW, zone=TOKYO)
    assert (q.kind, q.target) == (TargetKind.ADDRESS, "sender2@example.net")
    assert q.start == datetime(2024, 5, 13, tzinfo=TOKYO)
    assert q.end == datetime(2024, 5, 14, tzinfo=TOKYO)
    assert q.describe() == "sender2@example.net on 2024-05-13"


def test_slack_mailto_is_unwrapped() -> None:
    """Slack's <mailto:a@b|a@b> becomes the plain address."""
    q = parse_query("<mailto:a@example.org|a@example.org> today", now=NOW, zone=UTC)
    assert q.target == "a@example.org"
    assert q.start == datetime(2024, 5, 14, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "kind", "target"),
    [
        ("@example.org", TargetKind.DOMAIN, "@example.org"),
        ("4104E3D", TargetKind.QUEUE_ID, "4104E3D"),
        ("48rT2v1hQrz1J0N", TargetKind.QUEUE_ID, "48rT2v1hQrz1J0N"),
        ("BCDEFGHIJKL", TargetKind.QUEUE_ID, "BCDEFGHIJKL"),
        ("<20240513.abc@mail.example.net>", TargetKind.MESSAGE_ID, "20240513.abc@mail.example.net"),
        ("203.0.113.7", TargetKind.CLIENT_IP, "203.0.113.7"),
        ("2001:db8::1", TargetKind.CLIENT_IP, "2001:db8::1"),
    ],
)
def test_target_kinds(text: str, kind: TargetKind, target: str) -> None:
    """Every kind of target the grammar names is recognised and normalised."""
    q = parse_query(text, now=NOW, zone=UTC)
    assert (q.kind, q.target) == (kind, target)


def test_time_narrows_to_an_hour_either_side() -> None:
    """A time of day makes a two-hour window around it."""
    q = parse_query("a@example.org yesterday 10:00 on mx1,mx2", now=NOW, zone=UTC)
    assert q.start == datetime(2024, 5, 13, 9, 0, tzinfo=UTC)
    assert q.end == datetime(2024, 5, 13, 11, 0, tzinfo=UTC)
    assert q.servers == ("mx1", "mx2")


def test_date_range() -> None:
    """DATE..DATE covers both days."""
    q = parse_query("a@example.org 2024-05-10..2024-05-12", now=NOW, zone=UTC)
    assert q.start == datetime(2024, 5, 10, tzinfo=UTC)
    assert q.end == datetime(2024, 5, 13, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a@b.example; rm -rf /",
        "$(touch /tmp/x)",
        "`id`",
        "a@example.org 2024-13-40",
        "-f/etc/shadow",
        "a@example.org\n2024-05-13",
        'a"b@example.org',
        "x" * 600,
        "a@example.org on ../etc",
        "*",
        "a@example.org 2024-05-13..2024-05-01",
    ],
)
def test_bad_input_is_a_usage_error_with_examples(text: str) -> None:
    """Anything off-grammar is refused with a message that shows examples."""
    with pytest.raises(UsageError) as info:
        parse_query(text, now=NOW, zone=UTC)
    assert "/mailtrace sender2@example.net 2024-05-13" in str(info.value)


def test_time_window_is_two_real_hours_across_dst() -> None:
    """03:00 on the night Berlin springs forward: an hour either side in real time."""
    berlin = ZoneInfo("Europe/Berlin")
    q = parse_query("a@example.org 2026-03-29 03:00", now=NOW, zone=berlin)
    assert q.start is not None
    assert q.end is not None
    # in UTC: subtracting two times of one zone object would count wall-clock hours
    assert q.end.astimezone(UTC) - q.start.astimezone(UTC) == timedelta(hours=2)
    assert q.start.astimezone(UTC) == datetime(2026, 3, 29, 0, 0, tzinfo=UTC)


def test_time_with_a_range_is_refused() -> None:
    """A time of day belongs to one date; with a range it is a usage error."""
    with pytest.raises(UsageError, match="one date, not a range"):
        parse_query("a@example.org 2024-05-13..2024-05-15 10:00", now=NOW, zone=UTC)


def test_address_trailing_dot_and_mapped_ipv4() -> None:
    """A trailing dot is dropped from an address; an IPv4-mapped IPv6 stays as Postfix logs it."""
    assert parse_query("a@example.com.", now=NOW, zone=UTC).target == "a@example.com"
    assert parse_query("::ffff:1.2.3.4", now=NOW, zone=UTC).target == "::ffff:1.2.3.4"
