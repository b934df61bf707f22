"""Postfix log lines -> typed events.

Strategy: `parse_line` reads the syslog envelope (see `envelope`), then hands the message text
to `readers.parse_message`, which reads the queue ID and the fields of each daemon's messages.
Nothing here raises on odd input: a line nobody reads is kept as an OTHER event with its raw
text, one the envelope does not fit as UNPARSED.
"""

from __future__ import annotations

from datetime import UTC, tzinfo
from sys import intern

from parsers.envelope import YearGuess, parse_envelope
from parsers.models import EventKind, LogEvent
from parsers.readers import is_queue_id, parse_message

__all__ = ["is_queue_id", "parse_line", "parse_message"]


def parse_line(
    line: str,
    *,
    source: str | None = None,
    path: str | None = None,
    offset: int | None = None,
    zone: tzinfo = UTC,
    years: YearGuess | None = None,
) -> LogEvent:
    """Read one raw log line into a LogEvent. Never raises; unknown lines come back as OTHER."""
    line = line.rstrip("\r\n")
    envelope = parse_envelope(line, zone=zone, years=years)
    if envelope is None:
        return LogEvent(
            raw=line, kind=EventKind.UNPARSED, source=source, path=path, offset=offset, text=line
        )
    daemon = _daemon(envelope.program)
    try:
        fields = parse_message(daemon or "", envelope.text)
    except (ValueError, IndexError):  # a reader tripped on mangled input: keep the raw line
        fields = {"kind": EventKind.OTHER, "text": envelope.text}
    return LogEvent(
        raw=line,
        source=source,
        path=path,
        offset=offset,
        timestamp=envelope.timestamp,
        host=envelope.host,
        program=envelope.program,
        daemon=daemon,
        pid=envelope.pid,
        **fields,
    )


def _daemon(program: str | None) -> str | None:
    """`postfix/submission/smtpd` -> `smtpd`, one shared string per program name."""
    if program is None:
        return None
    daemon = _DAEMONS.get(program)
    if daemon is None:
        daemon = intern(program.rsplit("/", 1)[-1])
        if len(_DAEMONS) < 1024:  # a server has a few dozen programs; odd lines add no more
            _DAEMONS[program] = daemon
    return daemon


_DAEMONS: dict[str, str] = {}
