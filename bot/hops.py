"""Hop planning: which queue IDs to trace next on which server, and which links held up.

Strategy: after each round of pass 2, every server's lines are grouped into messages; a
message's links (a delivery "queued as NEWID" to another configured server, a forwarded copy,
a bounce notice, the copy after a content filter) and its client (a configured server that
handed it over) name a queue ID on a server. Those become the next round's wanted IDs there,
until no round adds one. A central log host (bot/loghost.py) keeps hops between the hosts
that share its files inside the same files, and its lines are handed to the hosts that wrote
them before the answer is grouped. After the last round, a link that names a server where
the queue ID was looked for and never found is taken back: the mail went somewhere not
searched. Each queued ID keeps its hand-over time (the line that named the link), so that the
round greps on the linked server only the files that can hold it (bot/followup.py: hop_files).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Protocol

from bot.loghost import HostResolver, onward_ids, relay_names, split_by_hostname
from bot.result import SourceFailure
from bot.settings import Settings
from bot.sources.source import LogSource
from parsers.models import LogEvent, Message
from parsers.trace import group_messages, resolve_local_relays


class HopState(Protocol):
    """What hop planning reads and extends of one server's search."""

    source: LogSource
    events: list[LogEvent]
    wanted: set[str]  # queue IDs to trace on this server
    traced: set[str]  # those already looked for
    handovers: dict[str, datetime | None]  # wanted ID -> when it was handed over (None: unknown)


class LinkResolver:
    """Maps a relay= or client text to the configured server it names (or the same host)."""

    def __init__(self, settings: Settings) -> None:
        self.names = {server.name: server.names() for server in settings.servers}

    def server_for(self, text: str) -> str | None:
        """The one configured server the text names; None when none does, or several equally."""
        for level in relay_names(text):
            hits = [name for name, names in self.names.items() if level & names]
            if len(hits) == 1:
                return hits[0]
            if hits:
                return None
        return None

    def __call__(self, relay: str, host: str) -> str | None:
        named = self.server_for(relay)
        if named is not None:
            return named
        return resolve_local_relays(relay, host)


def plan_hops(
    states: Mapping[str, HopState], resolver: LinkResolver, failures: Mapping[str, SourceFailure]
) -> bool:
    """Queue every linked message (next hops, forwarded copies, bounce notices, the copy
    before or after a content filter) and previous hops on the servers that have them;
    True if any is new."""
    new = False
    for name, st in states.items():
        if name in failures:
            continue
        if st.source.server.central:  # hops between the hosts whose lines share its files
            onward = onward_ids(st.events, st.wanted)
            st.wanted |= onward
            new = new or bool(onward)
        named = handover_times(st.events)
        for message in group_messages(st.events, resolver):
            for link in message.links:
                if link.host is None:
                    continue
                target = states.get(link.host)
                if target is not None and link.queue_id not in target.wanted:
                    when = named.get((message.queue_id, link.queue_id), message.first_seen)
                    want(target, link.queue_id, when)
                    new = True
            if message.client and message.queue_id:
                origin = resolver.server_for(message.client)
                target = states.get(origin) if origin and origin != name else None
                if target is not None and message.queue_id not in target.wanted:
                    want(target, message.queue_id, message.first_seen)  # "queued as ID" there
                    new = True
    return new


def want(st: HopState, queue_id: str, handed_over: datetime | None) -> None:
    """Trace `queue_id` on this server; its lines lie around `handed_over` (None: unknown)."""
    st.wanted.add(queue_id)
    known = st.handovers.get(queue_id, handed_over)
    st.handovers[queue_id] = (
        None if known is None or handed_over is None else min(known, handed_over)
    )


def handover_times(events: Iterable[LogEvent]) -> dict[tuple[str | None, str], datetime]:
    """(queue ID, linked queue ID) -> the time of the first line of the one naming the other
    ("queued as", "forwarded as", a notification's ID, a re-injection's orig_queue_id)."""
    found: dict[tuple[str | None, str], datetime] = {}
    for e in events:
        if e.timestamp is None:
            continue
        for linked in (e.new_queue_id, e.orig_queue_id):
            if linked:
                key = (e.queue_id, linked)
                found[key] = min(found.get(key, e.timestamp), e.timestamp)
    return found


def confirm_links(messages: list[Message], states: Mapping[str, HopState]) -> list[Message]:
    """A link names a server only if the message was found there (or could not be looked for).

    A relay to a loopback port is taken for a content filter on the same host; when the queue
    ID never shows up there, it went somewhere we do not search, and the link says so.
    """
    found = {(m.host, m.queue_id) for m in messages}
    out = []
    for m in messages:
        links = tuple(
            link.model_copy(update={"host": None})
            if link.host is not None
            and (link.host, link.queue_id) not in found
            and link.host in states
            and link.queue_id in states[link.host].traced
            else link
            for link in m.links
        )
        out.append(m if links == m.links else m.model_copy(update={"links": links}))
    return out


def events_by_host(states: Mapping[str, HopState]) -> tuple[list[LogEvent], dict[str, str]]:
    """Every event for grouping; a central log host's lines go to the hosts that wrote them.
    Also returns host -> searched server, for those hosts."""
    events: list[LogEvent] = []
    hosts: dict[str, str] = {}
    for name, st in states.items():
        if st.source.server.central:
            split, seen = split_by_hostname(name, st.events)
            events.extend(split)
            hosts.update(seen)
        else:
            events.extend(st.events)
    return events, hosts


def host_resolver(
    resolver: LinkResolver, settings: Settings, hosts: dict[str, str]
) -> HostResolver:
    """The relay resolver for grouping the answer: configured servers, and the hosts whose
    lines a central log host's files hold (with the relay names configured for them)."""
    return HostResolver(
        resolver,
        [h for h, name in hosts.items() if h != name],
        {h: a for s in settings.servers if s.central for h, a in s.host_aliases.items()},
    )


def lifetimes(settings: Settings, hosts: dict[str, str]) -> dict[str, timedelta]:
    """Each host's queue lifetime: its server's, or the central log host's it was read from."""
    own = {s.name: s.queue_lifetime_delta for s in settings.servers}
    return {**{host: own[name] for host, name in hosts.items() if name in own}, **own}
