"""Nothing found: the causes the evidence supports, certain facts first, each with a `code`.

Strategy: look only at what the search itself learned (which servers answered, which files
cover which time and could be read, where else the target or something like it appears) and
turn each fact that explains an empty answer into a `Diagnosis`. A cause found on several
servers is one entry naming them all. Facts the search saw (a server failed, the logs for that
day are gone, the address is there on another day) rank above likely explanations (a similar
address, the mail never reached us). `never_reached` is said only when every server answered,
every file covering the window was read, the logs reach back over the whole window and
nothing narrower explains the empty answer.

Codes (stable, for scripts; documented in docs/json-schema.md), in the order they are ranked:
servers_failed, files_unreadable (the answer is incomplete); other_days, outside_time_of_day,
other_servers, other_role, connection_no_mail (the target was seen, elsewhere or otherwise);
window_after_logs, window_before_retention (no logs for the time asked about),
window_partly_before_retention (a fact that explains nothing alone); similar_address,
never_reached (likely, not certain).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, time, timedelta, tzinfo

from bot import nearmiss
from bot.query import Query, TargetKind
from bot.result import Diagnosis, SearchResult

MAX_EVIDENCE = 5


def diagnose(result: SearchResult) -> list[Diagnosis]:
    """Ranked causes for an empty result (certain ones first), each with its evidence."""
    certain = [
        *_could_not_read(result),
        *_elsewhere(result),
        *_window_outside_logs(result),
    ]
    likely = _similar(result)
    explained = any(d.code != "window_partly_before_retention" for d in certain) or bool(likely)
    if not explained:
        likely.append(_never_reached(result))
    return [*certain, *likely]


def for_local_files(result: SearchResult) -> SearchResult:
    """The same causes for `--log PATH` (no configuration, no servers): `mailtrace doctor` checks
    configured servers and says nothing about these files, so the next steps name what applies
    (the path, its permissions)."""
    steps = {
        "servers_failed": (
            "Check the path given with --log (a file, or a glob that matches one; nothing "
            "matched it, or it could not be read), then ask again."
        ),
        "files_unreadable": (
            "Run as a user who can read the file (root, or a member of the group that owns it, "
            "often `adm`), or give --log a readable copy, then ask again."
        ),
    }
    diagnosis = tuple(
        d.model_copy(update={"next_step": steps[d.code]}) if d.code in steps else d
        for d in result.diagnosis
    )
    return result.model_copy(update={"diagnosis": diagnosis})


def _could_not_read(result: SearchResult) -> list[Diagnosis]:
    found = []
    if result.failures:
        names = _names(f.server for f in result.failures)
        found.append(
            Diagnosis(
                code="servers_failed",
                cause=f"{names} could not be searched; the mail may be in {_their(result)} logs.",
                evidence=tuple(f"{f.server}: {f.reason}: {f.detail}" for f in result.failures),
                next_step="Run `mailtrace doctor` to see why, fix it, then ask again.",
                for_operator=True,
            )
        )
    unreadable = result.unreadable_files
    if unreadable:
        names = _names(server for server, _ in unreadable)
        count = len(unreadable)
        evidence = [f"{server}: {path}" for server, path in unreadable[:MAX_EVIDENCE]]
        if count > MAX_EVIDENCE:
            evidence.append(f"… and {count - MAX_EVIDENCE} more")
        found.append(
            Diagnosis(
                code="files_unreadable",
                cause=(
                    f"{count} log file{_s(count)} on {names} could not be read (permission "
                    f"denied); the mail may be in {'it' if count == 1 else 'them'}."
                ),
                evidence=tuple(evidence),
                next_step=(
                    "Give the search user read access to the logs (e.g. the `adm` group), "
                    "check with `mailtrace doctor`, then ask again."
                ),
                for_operator=True,
            )
        )
    return found


def _window_outside_logs(result: SearchResult) -> list[Diagnosis]:
    start, end = result.window_start, result.window_end
    zone = result.query.zone
    after, before, partly = [], [], []
    for coverage in result.searched:
        first, last = coverage.span
        if start is not None and last is not None and start >= last:
            after.append(f"{coverage.server}'s newest log line was written {_fmt(last, zone)}")
        elif end is not None and first is not None and end <= first:
            before.append(f"{coverage.server}'s oldest log line is from {_fmt(first, zone)}")
        elif start is not None and first is not None and start < first:
            partly.append(f"{coverage.server}'s oldest log line is from {_fmt(first, zone)}")
    found = []
    if after:
        found.append(
            Diagnosis(
                code="window_after_logs",
                cause=f"{_servers_in(after)} {_have(after)} no logs yet for that time.",
                evidence=tuple(after),
                next_step="Check the date; if it is right, logging may have stopped there.",
            )
        )
    if before:
        found.append(
            Diagnosis(
                code="window_before_retention",
                cause=(
                    f"The logs of {_servers_in(before)} start after that time "
                    "(rotated away, or not kept)."
                ),
                evidence=tuple(before),
                next_step="Older logs may be archived; ask whoever keeps them.",
            )
        )
    if partly:
        found.append(
            Diagnosis(  # a fact, but it explains nothing: the rest of the window was read
                code="window_partly_before_retention",
                cause=(
                    f"Part of the time asked about is older than the logs of {_servers_in(partly)}."
                ),
                evidence=tuple(partly),
            )
        )
    return found


def _elsewhere(result: SearchResult) -> list[Diagnosis]:
    query, near = result.query, result.near
    found = []
    if result.other_days:
        days = result.other_days
        shown = ", ".join(days[:7]) + (" …" if len(days) > 7 else "")
        found.append(
            Diagnosis(
                code="other_days",
                cause="It was logged, but on other days than the one asked about.",
                evidence=(f"lines naming {_what(query)} on: {shown}",),
                next_step=f"Ask again with one of those dates: `{_ask(query, days[-1])}`.",
            )
        )
    if near.other_times:
        local = [t.astimezone(query.zone) for t in near.other_times]
        shown = ", ".join(list(dict.fromkeys(f"{t:%Y-%m-%d %H:%M}" for t in local))[:5])
        found.append(
            Diagnosis(
                code="outside_time_of_day",
                cause="It was logged that day, but not within an hour of the time asked about.",
                evidence=(f"lines naming {_what(query)} at: {shown} ({_zone_name(local[0])})",),
                next_step=(
                    f"Ask again with that time, `{_ask(query, f'{local[0]:%Y-%m-%d %H:%M}')}`, "
                    f"or the whole day, `{_ask(query, f'{local[0]:%Y-%m-%d}')}`."
                ),
            )
        )
    if near.other_servers:
        names = _names(near.other_servers)
        found.append(
            Diagnosis(
                code="other_servers",
                cause=f"It was logged on {names}, which the query left out with `on …`.",
                evidence=(f"lines naming {_what(query)} on {names} in the same window",),
                next_step=f"Ask again without `on …`: `{_ask(query, _dates(query))}`.",
            )
        )
    if near.other_role:
        found.append(
            Diagnosis(
                code="other_role",
                cause=(
                    f"{_what(query)} appears in the logs, but not as the sender, recipient or "
                    "queue ID of a message (e.g. in a header, a login, a relay name)."
                ),
                evidence=tuple(_shorten(line) for line in near.other_role),
                next_step="Read the lines above: they say what it was instead.",
            )
        )
    if near.connections:
        found.append(_connection_no_mail(query, near.connections))
    return found


def _connection_no_mail(query: Query, sessions: Sequence[str]) -> Diagnosis:
    """The client came and went without a queued mail; asked by sender, the sessions that
    named it (e.g. in a pipelined MAIL FROM) lead to the client, whose query tells the rest."""
    step = (
        "The sending side gave up: its own logs say why (TLS settings, a timeout, a rejected "
        "command)."
    )
    if query.kind is TargetKind.CLIENT_IP:
        who = "The client"
    else:
        clients = nearmiss.clients_in(sessions)
        who = f"A client sending as {_what(query)}"
        if clients:
            who += f" ({_names(clients)})"
            step += " To see its whole session: " + ", ".join(
                f"`{_ask(query, _dates(query), ip)}`" for ip in clients[:3]
            )
            step += "."
    return Diagnosis(
        code="connection_no_mail",
        cause=(
            f"{who} connected, but no mail was queued (it disconnected, timed out, failed TLS "
            "or made too many errors)."
        ),
        evidence=tuple(_shorten(line) for line in sessions),
        next_step=step,
    )


def _similar(result: SearchResult) -> list[Diagnosis]:
    similar = result.near.similar
    if not similar:
        return []
    query = result.query
    return [
        Diagnosis(
            code="similar_address",
            cause=f"No line names {query.target}, but similar addresses are in the logs.",
            evidence=tuple(f"seen in the same time: {a}" for a in similar),
            next_step="Ask again with one of them: "
            + ", ".join(f"`{_ask(query, _dates(query), a)}`" for a in similar[:3])
            + ".",
            certain=False,
        )
    ]


def _never_reached(result: SearchResult) -> Diagnosis:
    query = result.query
    read = result.files_read
    servers = _names(c.server for c in result.searched) or "no server"
    if query.kind is TargetKind.CLIENT_IP:
        step = "Check the client's address, and that it really connects to our servers."
    else:
        step = (
            "Check that the sender really sent it (their outbox, their provider's logs) and "
            "that the domain's MX records point at our servers."
        )
    if query.kind is TargetKind.ADDRESS:
        domain = "@" + query.target.rpartition("@")[2]
        step += f" To see the domain's other mail: `{_ask(query, _dates(query), domain)}`."
    return Diagnosis(
        code="never_reached",
        cause="The mail probably never reached our servers.",
        evidence=(
            f"read {read} log file{_s(read)} on {servers} covering the time asked about; "
            "no line names it",
        ),
        next_step=step,
        certain=False,
    )


# ------------------------------------------------------------------ wording


def _names(names: Iterable[str]) -> str:
    """'mx-a', 'mx-a and mx-b', 'mx-a, mx-b and mx-c' (each once, in order)."""
    unique = list(dict.fromkeys(names))
    if len(unique) <= 1:
        return "".join(unique)
    return ", ".join(unique[:-1]) + " and " + unique[-1]


def _servers_in(evidence: Sequence[str]) -> str:
    return _names(line.partition("'s ")[0] for line in evidence)


def _have(evidence: Sequence[str]) -> str:
    return "has" if len(evidence) == 1 else "have"


def _their(result: SearchResult) -> str:
    return "its" if len(result.failures) == 1 else "their"


def _s(count: int) -> str:
    return "" if count == 1 else "s"


def _what(query: Query) -> str:
    return query.describe_target()


def _fmt(moment: datetime, zone: tzinfo) -> str:
    local = moment.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M} {_zone_name(local)}"


def _zone_name(moment: datetime) -> str:
    return moment.strftime("%Z") or "UTC"


def _dates(query: Query) -> str:
    """The date part of the query as typed in the grammar: '2024-05-13', 'A..B', 'D HH:MM'."""
    if query.start is None or query.end is None:
        return ""
    start = query.start.astimezone(query.zone)
    end = query.end.astimezone(query.zone)
    if start.time() == time(0) and end.time() == time(0):
        last = (end - timedelta(days=1)).date()
        return f"{start:%Y-%m-%d}" + ("" if last == start.date() else f"..{last:%Y-%m-%d}")
    middle = (query.start + (query.end - query.start) / 2).astimezone(query.zone)
    return f"{middle:%Y-%m-%d %H:%M}"


def _ask(query: Query, when: str, target: str | None = None) -> str:
    """A ready-to-paste query: the target as the grammar takes it, then the date part."""
    return " ".join(part for part in (target or query.needle_as_typed, when) if part)


def _shorten(line: str, limit: int = 240) -> str:
    return line if len(line) <= limit else line[: limit - 1] + "…"
