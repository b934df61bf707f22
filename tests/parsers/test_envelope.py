"""The syslog envelope in every format Postfix logs arrive in, and year inference."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from parsers.envelope import YearGuess, parse_envelope

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (  # traditional syslog, space-padded day, in the server's zone
            "May  3 10:00:12 mx1 postfix/smtpd[1234]: connect from x[192.0.2.1]",
            datetime(2024, 5, 3, 10, 0, 12, tzinfo=BERLIN),
        ),
        (  # Postfix's own maillog_file: zero-padded day
            "Jan 01 00:00:03 mx1 postfix/qmgr[77]: 4104E3D: removed",
            datetime(2025, 1, 1, 0, 0, 3, tzinfo=BERLIN),
        ),
        (  # RFC 3339 with a fraction and a colon offset
            "2024-05-13T10:00:12.123456+09:00 mx1 postfix/smtp[99]: 4104E3D: removed",
            datetime(2024, 5, 13, 10, 0, 12, 123456, tzinfo=timezone(timedelta(hours=9))),
        ),
        (  # RFC 3339 without fraction, offset without colon (journalctl -o short-iso)
            "2024-05-13T10:00:12+0900 mx1 postfix/smtp[99]: 4104E3D: removed",
            datetime(2024, 5, 13, 10, 0, 12, tzinfo=timezone(timedelta(hours=9))),
        ),
        (  # RFC 3339 in UTC with nanoseconds (more digits than Python keeps)
            "2024-05-13T01:00:12.123456789Z mx1 postfix/smtp[99]: 4104E3D: removed",
            datetime(2024, 5, 13, 1, 0, 12, 123456, tzinfo=UTC),
        ),
    ],
)
def test_formats_give_aware_timestamps(line: str, expected: datetime) -> None:
    """Each format yields the right, timezone-aware time, host and message part."""
    years = YearGuess(datetime(2025, 6, 1, tzinfo=BERLIN)) if expected.year == 2025 else None
    if years is None:
        years = YearGuess(datetime(2024, 6, 1, tzinfo=BERLIN))
    env = parse_envelope(line, zone=BERLIN, years=years)
    assert env is not None
    assert env.timestamp == expected
    assert env.timestamp is not None
    assert env.timestamp.tzinfo is not None
    assert env.host == "mx1"
    assert env.text.startswith(("connect", "4104E3D"))


def test_tags_with_syslog_name() -> None:
    """The daemon is after the last '/', whatever syslog_name says."""
    for tag, daemon in [
        ("postfix/submission/smtpd", "smtpd"),
        ("postfix-out/smtp", "smtp"),
        ("postfix-239.58.50.50/qmgr", "qmgr"),
    ]:
        env = parse_envelope(f"May 13 10:00:12 mx1 {tag}[1]: 4104E3D: removed")
        assert env is not None
        assert env.program == tag
        assert env.daemon == daemon


def test_journal_json_record() -> None:
    """A journalctl -o json record gives time from __REALTIME_TIMESTAMP, host, tag and message."""
    record = {
        "__REALTIME_TIMESTAMP": "1715594412500000",
        "_HOSTNAME": "mx9",
        "SYSLOG_IDENTIFIER": "postfix/qmgr",
        "_PID": "12",
        "MESSAGE": "4104E3D: removed",
    }
    env = parse_envelope(json.dumps(record))
    assert env is not None
    assert env.timestamp == datetime(2024, 5, 13, 10, 0, 12, 500000, tzinfo=UTC)
    assert (env.host, env.daemon, env.pid, env.text) == ("mx9", "qmgr", 12, "4104E3D: removed")


def test_journal_json_byte_array_message() -> None:
    """journald's byte-array MESSAGE (non-UTF-8) is decoded with replacement, not dropped."""
    record = {
        "__REALTIME_TIMESTAMP": "0",
        "SYSLOG_IDENTIFIER": "postfix/smtp",
        "MESSAGE": [65, 255, 66],
    }
    env = parse_envelope(json.dumps(record))
    assert env is not None
    assert env.text == "A\ufffdB"


def test_year_walks_back_over_new_year() -> None:
    """A file written on Jan 2 holds Dec 31 lines from the year before and Jan 1 lines of its own."""
    years = YearGuess(datetime(2026, 1, 2, 3, 0, tzinfo=UTC))
    dec = parse_envelope("Dec 31 23:59:58 mx postfix/smtpd[1]: x", years=years)
    jan = parse_envelope("Jan  1 00:00:02 mx postfix/qmgr[1]: x", years=years)
    assert dec is not None
    assert jan is not None
    assert dec.timestamp == datetime(2025, 12, 31, 23, 59, 58, tzinfo=UTC)
    assert jan.timestamp == datetime(2026, 1, 1, 0, 0, 2, tzinfo=UTC)


def test_year_override_wins() -> None:
    """A configured year overrides the guess from the modification time."""
    years = YearGuess(datetime(2026, 1, 2, tzinfo=UTC), fixed=2019)
    env = parse_envelope("Dec 31 23:59:58 mx postfix/smtpd[1]: x", years=years)
    assert env is not None
    assert env.timestamp is not None
    assert env.timestamp.year == 2019


def test_feb_29_in_a_guessed_non_leap_year_keeps_the_line() -> None:
    """An impossible date loses its time, not the line."""
    years = YearGuess(datetime(2026, 3, 1, tzinfo=UTC))
    env = parse_envelope("Feb 29 10:00:00 mx postfix/smtpd[1]: x", years=years)
    assert env is not None
    assert env.timestamp is None
    assert env.text == "x"


def test_unknown_shapes_return_none() -> None:
    """Lines in no known format are not an envelope."""
    for line in ["", "hello", "{not json", "[1,2]", "2024-05-13 nothing"]:
        assert parse_envelope(line) is None


def test_year_override_still_walks_back_over_new_year() -> None:
    """The override is the year the file was last written: Dec 31 lines before a Jan 1 stay a year
    earlier, whether or not the file's modification time is meaningful."""
    for mtime in (datetime(2026, 1, 2, tzinfo=UTC), datetime(2030, 6, 1, tzinfo=UTC)):
        years = YearGuess(mtime, fixed=2026)
        dec = parse_envelope("Dec 31 23:59:58 mx postfix/smtpd[1]: x", years=years)
        jan = parse_envelope("Jan  1 00:00:02 mx postfix/qmgr[1]: x", years=years)
        assert dec is not None
        assert jan is not None
        assert jan.timestamp == datetime(2026, 1, 1, 0, 0, 2, tzinfo=UTC)
        if mtime.year == 2026:
            assert dec.timestamp == datetime(2025, 12, 31, 23, 59, 58, tzinfo=UTC)


def test_year_guesses_at_the_same_instant_in_other_zones_keep_their_own_years() -> None:
    """Two files whose modification times are the same instant, one read in UTC and one in
    Tokyo (already Jan 1 there), give a Jan 1 line the years their own calendars say, whatever
    order they are read in (the parser's stamp cache is not shared between them)."""
    instant = datetime(2024, 12, 30, 20, 0, tzinfo=UTC)  # Dec 31, 05:00 in Tokyo
    utc = YearGuess(reference=instant)
    tokyo = YearGuess(reference=instant.astimezone(ZoneInfo("Asia/Tokyo")))
    line = "Jan  1 00:00:05 mx postfix/qmgr[1]: 4A1B2C3D4E: removed"
    for first, second in ((utc, tokyo), (tokyo, utc)):
        a = parse_envelope(line, zone=UTC, years=first)
        b = parse_envelope(line, zone=UTC, years=second)
        assert a is not None
        assert b is not None
        assert a.timestamp is not None
        assert b.timestamp is not None
        assert (a.timestamp.year, b.timestamp.year) == (
            first.year_for(1, 1),
            second.year_for(1, 1),
        )
    assert utc.year_for(1, 1) != tokyo.year_for(1, 1)
