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
        ("<20240513.abc@mail.example.net>", TargetKind.ADDRESS, "20240513.abc@mail.example.net"),
        (
            "<20240513.abc$x@mail.example.net>",
            TargetKind.MESSAGE_ID,
            "20240513.abc$x@mail.example.net",
        ),
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
def test_bad_input_is_a_one_line_usage_error(text: str) -> None:
    """Anything off-grammar is refused in one line with at most one example."""
    with pytest.raises(UsageError) as info:
        parse_query(text, now=NOW, zone=UTC)
    message = str(info.value)
    assert "\n" not in message
    assert message.count("/mailtrace") <= 1


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


def test_bracketed_address_is_address_and_message_id() -> None:
    """<a@b> (an address copied with its brackets) is searched as an address and a message-id."""
    q = parse_query("<From-Sent@example.net>", now=NOW, zone=UTC)
    assert (q.kind, q.target, q.also_message_id) == (
        TargetKind.ADDRESS,
        "from-sent@example.net",
        True,
    )
    assert q.needle_as_typed == "<from-sent@example.net>"


@pytest.mark.parametrize("text", ["root@localhost", "postmaster@mailhost", "@localhost"])
def test_dotless_domains_are_addresses(text: str) -> None:
    """root@localhost and other one-label domains are addresses (or a domain), not errors."""
    q = parse_query(text, now=NOW, zone=UTC)
    assert q.target == text
    assert q.kind in (TargetKind.ADDRESS, TargetKind.DOMAIN)


@pytest.mark.parametrize(
    ("text", "start", "end", "servers"),
    [
        ("“a@example.org” today.", (14, 0), (15, 0), ()),
        ("a@example.org, yesterday,", (13, 0), (14, 0), ()),
        ("a@example.org 2024-05-10–2024-05-12", (10, 0), (13, 0), ()),
        ("a@example.org 2024-05-10 — 2024-05-12", (10, 0), (13, 0), ()),
        ("a@example.org 2024-05-13 4:58pm", (13, 15), (13, 17), ()),
        ("a@example.org 2024-05-13 4:58 PM", (13, 15), (13, 17), ()),
        ("a@example.org 2024-05-13 12:30am", (12, 23), (13, 1), ()),
        ("a@example.org today on mx-a, mx-b", (14, 0), (15, 0), ("mx-a", "mx-b")),
        ("a@example.org on ‘mx-a’", None, None, ("mx-a",)),
    ],
)
def test_phone_forms_are_forgiven(
    text: str,
    start: tuple[int, int] | None,
    end: tuple[int, int] | None,
    servers: tuple[str, ...],
) -> None:
    """Smart quotes, trailing dots and commas, dash ranges, am/pm and 'on a, b' read as meant."""
    q = parse_query(text, now=NOW, zone=UTC)
    assert q.target == "a@example.org"
    if start is None or end is None:
        assert q.start is None
    else:
        assert q.start is not None
        assert q.end is not None
        assert (q.start.day, q.start.hour) == start
        assert (q.end.day, q.end.hour) == end
    assert q.servers == servers


def test_am_pm_hour_out_of_range_is_refused() -> None:
    """13:00pm is not a time: the hour with am/pm is 1 to 12."""
    with pytest.raises(UsageError, match="1 to 12"):
        parse_query("a@example.org today 13:00pm", now=NOW, zone=UTC)
