"""Nothing found: the likely reasons, most likely first, each with its evidence.

Strategy: look only at what the search itself learned (which servers answered, which files
cover which time, where else the target appears) and turn each fact that could explain an
empty answer into a `Diagnosis`. A fact that is certain (a server failed, the logs for that day
are gone) ranks above one that is only likely (the mail never reached us).
"""

from __future__ import annotations

from datetime import datetime

from bot.query import TargetKind
from bot.result import Diagnosis, SearchResult


def _fmt(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M %Z").strip() if moment else "an unknown time"


def diagnose(result: SearchResult) -> list[Diagnosis]:
    """Ranked likely causes for an empty result."""
    found: list[Diagnosis] = []
    query = result.query
    if result.failures:
        found.append(
            Diagnosis(
                cause="Some servers could not be searched; the mail may be in their logs.",
                evidence=tuple(f"{f.server}: {f.reason}: {f.detail}" for f in result.failures),
                next_step="Run `mailtrace doctor` or fix the server, then ask again.",
            )
        )
    if result.other_days:
        days = ", ".join(result.other_days[:7]) + (" …" if len(result.other_days) > 7 else "")
        found.append(
            Diagnosis(
                cause="It was logged, but on other days than the one asked about.",
                evidence=(f"lines naming {query.target} on: {days}",),
                next_step=(
                    f"Ask again with one of those dates, e.g. "
                    f"`{query.needle} {result.other_days[-1]}`."
                ),
            )
        )
    start, end = result.window_start, result.window_end
    for coverage in result.searched:
        first, last = coverage.span
        name = coverage.server
        if start is not None and first is not None and end is not None and end <= first:
            found.append(
                Diagnosis(
                    cause=f"{name}'s logs start after that time (rotated away, or not kept).",
                    evidence=(f"{name}'s oldest log line is from {_fmt(first)}",),
                    next_step="Look in archived logs, or ask the mail team about retention.",
                )
            )
        elif start is not None and first is not None and start < first:
            found.append(
                Diagnosis(
                    cause=f"Part of the time asked about is older than {name}'s logs.",
                    evidence=(f"{name}'s oldest log line is from {_fmt(first)}",),
                )
            )
        if start is not None and last is not None and start >= last:
            found.append(
                Diagnosis(
                    cause=f"{name} has no logs yet for that time.",
                    evidence=(f"{name}'s newest log file was last written at {_fmt(last)}",),
                    next_step="Check the date, or whether logging on that server stopped.",
                )
            )
        unreadable = [f.path for f in coverage.files if not f.readable]
        if unreadable:
            found.append(
                Diagnosis(
                    cause=f"Some of {name}'s log files could not be read (permission denied).",
                    evidence=tuple(unreadable[:5]),
                    next_step="Give the mailtrace user read access (e.g. the adm group).",
                )
            )
    if result.other_days:
        return found  # it did reach us: the guesses below would contradict the evidence
    searched_files = sum(1 for c in result.searched for f in c.files if f.searched)
    lines = sum(c.lines_read for c in result.searched)
    servers = ", ".join(c.server for c in result.searched) or "no server"
    found.append(
        Diagnosis(
            cause="The mail probably never reached our servers.",
            evidence=(
                f"searched {searched_files} log files on {servers}; {lines} lines contain the "
                "search text, but none names it in the window asked about"
                if lines
                else f"searched {searched_files} log files on {servers}; no line names it",
            ),
            next_step=(
                "Check that the sender really sent it (their outbox, their mail provider's "
                "logs) and that the domain's MX records point at our servers."
            ),
        )
    )
    if query.kind is TargetKind.ADDRESS:
        domain = "@" + query.target.split("@", 1)[1]
        found.append(
            Diagnosis(
                cause="The address may be spelled differently in the logs (alias, typo, rewrite).",
                evidence=(f"no line names exactly {query.target}",),
                next_step=f"Search the whole domain: `{domain}` with the same date.",
            )
        )
    return found
