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
from datetime import date, datetime, time, timedelta, tzinfo

from bot import nearmiss
from bot.errors import failure_words
from bot.i18n import ENGLISH, Language
from bot.query import Query, TargetKind
from bot.result import Diagnosis, SearchResult
from parsers.i18n import N_, Translator

MAX_EVIDENCE = 5


def diagnose(result: SearchResult, tr: Translator = ENGLISH) -> list[Diagnosis]:
    """Ranked causes for an empty result (certain ones first), each with its evidence, worded
    in `tr` (the asker's language; a `Language` also writes the evidence's times its way)."""
    lang = tr if isinstance(tr, Language) else ENGLISH
    certain = [
        *_could_not_read(result, lang),
        *_elsewhere(result, lang),
        *_window_outside_logs(result, lang),
    ]
    likely = _similar(result, lang)
    explained = any(d.code != "window_partly_before_retention" for d in certain) or bool(likely)
    if not explained:
        likely.append(_never_reached(result, lang))
    return [*certain, *likely]


_LOCAL_STEPS = {
    "servers_failed": N_(
        "Check the path given with --log (a file, or a glob that matches one; nothing "
        "matched it, or it could not be read), then ask again."
    ),
    "files_unreadable": N_(
        "Run as a user who can read the file (root, or a member of the group that owns it, "
        "often `adm`), or give --log a readable copy, then ask again."
    ),
}


def for_local_files(result: SearchResult, lang: Language = ENGLISH) -> SearchResult:
    """The same causes for `--log PATH` (no configuration, no servers): `mailtrace doctor` checks
    configured servers and says nothing about these files, so the next steps name what applies
    (the path, its permissions)."""
    diagnosis = tuple(
        d.model_copy(update={"next_step": lang.gettext(_LOCAL_STEPS[d.code])})
        if d.code in _LOCAL_STEPS
        else d
        for d in result.diagnosis
    )
    return result.model_copy(update={"diagnosis": diagnosis})


def _could_not_read(result: SearchResult, lang: Language) -> list[Diagnosis]:
    _ = lang.gettext
    found = []
    if result.failures:
        names = _names((f.server for f in result.failures), lang)
        found.append(
            Diagnosis(
                code="servers_failed",
                cause=lang.ngettext(
                    "{servers} could not be searched; the mail may be in its logs.",
                    "{servers} could not be searched; the mail may be in their logs.",
                    len(result.failures),
                ).format(servers=names),
                evidence=tuple(
                    f"{f.server}: {failure_words(f.reason, lang)}: {f.detail}"
                    for f in result.failures
                ),
                next_step=_("Run `mailtrace doctor` to see why, fix it, then ask again."),
                for_operator=True,
            )
        )
    unreadable = result.unreadable_files
    if unreadable:
        names = _names((server for server, _path in unreadable), lang)
        count = len(unreadable)
        evidence = [f"{server}: {path}" for server, path in unreadable[:MAX_EVIDENCE]]
        if count > MAX_EVIDENCE:
            evidence.append(_("… and {n} more").format(n=count - MAX_EVIDENCE))
        found.append(
            Diagnosis(
                code="files_unreadable",
                cause=lang.ngettext(
                    "{n} log file on {servers} could not be read (permission denied); the mail "
                    "may be in it.",
                    "{n} log files on {servers} could not be read (permission denied); the mail "
                    "may be in them.",
                    count,
                ).format(n=count, servers=names),
                evidence=tuple(evidence),
                next_step=_(
                    "Give the search user read access to the logs (e.g. the `adm` group), "
                    "check with `mailtrace doctor`, then ask again."
                ),
                for_operator=True,
            )
        )
    return found


def _window_outside_logs(result: SearchResult, lang: Language) -> list[Diagnosis]:
    _ = lang.gettext
    start, end = result.window_start, result.window_end
    zone = result.query.zone
    newest = _("{server}'s newest log line was written {time}")
    oldest = _("{server}'s oldest log line is from {time}")
    after: dict[str, str] = {}
    before: dict[str, str] = {}
    partly: dict[str, str] = {}
    for coverage in result.searched:
        first, last = coverage.span
        name = coverage.server
        if start is not None and last is not None and start >= last:
            after[name] = newest.format(server=name, time=_fmt(last, zone, lang))
        elif end is not None and first is not None and end <= first:
            before[name] = oldest.format(server=name, time=_fmt(first, zone, lang))
        elif start is not None and first is not None and start < first:
            partly[name] = oldest.format(server=name, time=_fmt(first, zone, lang))
    found = []
    if after:
        found.append(
            Diagnosis(
                code="window_after_logs",
                cause=lang.ngettext(
                    "{servers} has no logs yet for that time.",
                    "{servers} have no logs yet for that time.",
                    len(after),
                ).format(servers=_names(after, lang)),
                evidence=tuple(after.values()),
                next_step=_("Check the date; if it is right, logging may have stopped there."),
            )
        )
    if before:
        found.append(
            Diagnosis(
                code="window_before_retention",
                cause=_(
                    "The logs of {servers} start after that time (rotated away, or not kept)."
                ).format(servers=_names(before, lang)),
                evidence=tuple(before.values()),
                next_step=_("Older logs may be archived; ask whoever keeps them."),
            )
        )
    if partly:
        found.append(
            Diagnosis(  # a fact, but it explains nothing: the rest of the window was read
                code="window_partly_before_retention",
                cause=_("Part of the time asked about is older than the logs of {servers}.").format(
                    servers=_names(partly, lang)
                ),
                evidence=tuple(partly.values()),
            )
        )
    return found


def _elsewhere(result: SearchResult, lang: Language) -> list[Diagnosis]:
    _ = lang.gettext
    query, near = result.query, result.near
    what = query.describe_target(lang)
    found = []
    if result.other_days:
        days = result.other_days
        shown = _(", ").join(_day(d, lang) for d in days[:7]) + (" …" if len(days) > 7 else "")
        found.append(
            Diagnosis(
                code="other_days",
                cause=_("It was logged, but on other days than the one asked about."),
                evidence=(_("lines naming {what} on: {days}").format(what=what, days=shown),),
                next_step=_("Ask again with one of those dates: `{query}`.").format(
                    query=_ask(query, days[-1])
                ),
            )
        )
    if near.other_times:
        local = [t.astimezone(query.zone) for t in near.other_times]
        times = list(dict.fromkeys(lang.minute(t) for t in local))[:5]
        found.append(
            Diagnosis(
                code="outside_time_of_day",
                cause=_("It was logged that day, but not within an hour of the time asked about."),
                evidence=(
                    _("lines naming {what} at: {times} ({zone})").format(
                        what=what, times=_(", ").join(times), zone=_zone_name(local[0])
                    ),
                ),
                next_step=_(
                    "Ask again with that time, `{at_time}`, or the whole day, `{day}`."
                ).format(
                    at_time=_ask(query, f"{local[0]:%Y-%m-%d %H:%M}"),
                    day=_ask(query, f"{local[0]:%Y-%m-%d}"),
                ),
            )
        )
    if near.other_servers:
        names = _names(near.other_servers, lang)
        found.append(
            Diagnosis(
                code="other_servers",
                cause=_("It was logged on {servers}, which the query left out with `on …`.").format(
                    servers=names
                ),
                evidence=(
                    _("lines naming {what} on {servers} in the same window").format(
                        what=what, servers=names
                    ),
                ),
                next_step=_("Ask again without `on …`: `{query}`.").format(
                    query=_ask(query, _dates(query))
                ),
            )
        )
    if near.other_role:
        found.append(
            Diagnosis(
                code="other_role",
                cause=_(
                    "{what} appears in the logs, but not as the sender, recipient or queue ID of "
                    "a message (e.g. in a header, a login, a relay name)."
                ).format(what=what),
                evidence=tuple(_shorten(line) for line in near.other_role),
                next_step=_("Read the lines above: they say what it was instead."),
            )
        )
    if near.connections:
        found.append(_connection_no_mail(query, near.connections, lang))
    return found


def _connection_no_mail(query: Query, sessions: Sequence[str], lang: Language) -> Diagnosis:
    """The client came and went without a queued mail; asked by sender, the sessions that
    named it (e.g. in a pipelined MAIL FROM) lead to the client, whose query tells the rest."""
    _ = lang.gettext
    step = _(
        "The sending side gave up: its own logs say why (TLS settings, a timeout, a rejected "
        "command)."
    )
    clients = [] if query.kind is TargetKind.CLIENT_IP else nearmiss.clients_in(sessions)
    if query.kind is TargetKind.CLIENT_IP:
        cause = _(
            "The client connected, but no mail was queued (it disconnected, timed out, failed "
            "TLS or made too many errors)."
        )
    elif clients:
        cause = _(
            "A client sending as {what} ({clients}) connected, but no mail was queued (it "
            "disconnected, timed out, failed TLS or made too many errors)."
        ).format(what=query.describe_target(lang), clients=_names(clients, lang))
        asks = _(", ").join(f"`{_ask(query, _dates(query), ip)}`" for ip in clients[:3])
        step += _sentence_gap(lang) + _("To see its whole session: {queries}.").format(queries=asks)
    else:
        cause = _(
            "A client sending as {what} connected, but no mail was queued (it disconnected, "
            "timed out, failed TLS or made too many errors)."
        ).format(what=query.describe_target(lang))
    return Diagnosis(
        code="connection_no_mail",
        cause=cause,
        evidence=tuple(_shorten(nearmiss.reword_count(line, lang)) for line in sessions),
        next_step=step,
    )


def _similar(result: SearchResult, lang: Language) -> list[Diagnosis]:
    _ = lang.gettext
    similar = result.near.similar
    if not similar:
        return []
    query = result.query
    asks = _(", ").join(f"`{_ask(query, _dates(query), a)}`" for a in similar[:3])
    return [
        Diagnosis(
            code="similar_address",
            cause=_("No line names {target}, but similar addresses are in the logs.").format(
                target=query.target
            ),
            evidence=tuple(
                _("seen in the same time: {address}").format(address=a) for a in similar
            ),
            next_step=_("Ask again with one of them: {queries}.").format(queries=asks),
            certain=False,
        )
    ]


def _never_reached(result: SearchResult, lang: Language) -> Diagnosis:
    _ = lang.gettext
    query = result.query
    read = result.files_read
    servers = _names((c.server for c in result.searched), lang) or _("no server")
    if query.kind is TargetKind.CLIENT_IP:
        step = _("Check the client's address, and that it really connects to our servers.")
    else:
        step = _(
            "Check that the sender really sent it (their outbox, their provider's logs) and "
            "that the domain's MX records point at our servers."
        )
    if query.kind is TargetKind.ADDRESS:
        domain = "@" + query.target.rpartition("@")[2]
        step += _sentence_gap(lang) + _("To see the domain's other mail: `{query}`.").format(
            query=_ask(query, _dates(query), domain)
        )
    return Diagnosis(
        code="never_reached",
        cause=_("The mail probably never reached our servers."),
        evidence=(
            lang.ngettext(
                "read {n} log file on {servers} covering the time asked about; no line names it",
                "read {n} log files on {servers} covering the time asked about; no line names it",
                read,
            ).format(n=read, servers=servers),
        ),
        next_step=step,
        certain=False,
    )


# ------------------------------------------------------------------ wording


def _names(names: Iterable[str], lang: Language) -> str:
    """'mx-a', 'mx-a and mx-b', 'mx-a, mx-b and mx-c' (each once, in order)."""
    unique = list(dict.fromkeys(names))
    if len(unique) <= 1:
        return "".join(unique)
    return lang.gettext("{first} and {last}").format(
        first=lang.gettext(", ").join(unique[:-1]), last=unique[-1]
    )


def _sentence_gap(lang: Language) -> str:
    """Between two sentences: a space in English, nothing after a Japanese full stop."""
    return "" if lang.code == "ja" else " "


def _fmt(moment: datetime, zone: tzinfo, lang: Language) -> str:
    local = moment.astimezone(zone)
    return f"{lang.minute(local)} {_zone_name(local)}"


def _day(iso: str, lang: Language) -> str:
    """'2024-05-13' (a date the search found) as the language writes a day."""
    return lang.day(datetime.combine(date.fromisoformat(iso), time(0)))


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
