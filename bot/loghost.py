"""A central log host: one configured source whose files hold several mail servers' lines.

Strategy: rsyslog on a log host writes every mail server's lines into one file, each line
with its sender's syslog HOSTNAME. For such a source (`central: true`) the search runs as for
any server — pass 1 and pass 2 grep the one file — with two differences: a hop to another
server ("queued as NEWID" naming a host that is not configured) is looked for in the same
file, and before grouping each line is given to the host that wrote it, so the answer names
mx1 and mx2 as they are, not the log host. Relays are matched to those hosts by name (the
relay's host name, or its first label, equals the syslog HOSTNAME).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from parsers.models import LogEvent
from parsers.trace import RelayResolver


def split_by_hostname(
    name: str, events: Iterable[LogEvent]
) -> tuple[list[LogEvent], dict[str, str]]:
    """The events with each line's own syslog host as its source, and host -> `name`."""
    out: list[LogEvent] = []
    hosts: dict[str, str] = {}
    for event in events:
        host = event.host or name
        hosts[host] = name
        out.append(replace(event, source=host))
    return out, hosts


class HostResolver:
    """A relay resolver that also knows the hosts seen in central log files, and the names
    their relay= fields use for them (`host_aliases`, e.g. "127.0.0.1:12538" for mx2)."""

    def __init__(
        self,
        base: RelayResolver,
        hosts: Iterable[str],
        aliases: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self.base = base
        self.hosts = {h.lower(): h for h in hosts}
        self.labels = {h.lower().split(".", 1)[0]: h for h in self.hosts.values()}
        self.aliases = {host: {a.lower() for a in names} for host, names in (aliases or {}).items()}

    def __call__(self, relay: str, host: str) -> str | None:
        for level in relay_names(relay):  # an alias first: it may name a loopback port
            hits = [h for h, names in self.aliases.items() if level & names]
            if len(hits) == 1:
                return hits[0]
        named = self.base(relay, host)
        if named is not None:
            return named
        return self.host_of(relay)

    def host_of(self, text: str) -> str | None:
        """'mx2.example.com[10.0.0.2]:25' -> 'mx2' when a central file has lines of mx2."""
        name = text.lower().split("[", 1)[0].split(":", 1)[0]
        if not name:
            return None
        return self.hosts.get(name) or self.labels.get(name.split(".", 1)[0])


def onward_ids(events: Iterable[LogEvent], wanted: set[str]) -> set[str]:
    """Queue IDs in a central file to trace next: where a wanted message went ("queued as
    NEWID", "forwarded as", notices), and where it came from (the line that says "queued as"
    a wanted ID belongs to the previous hop's message)."""
    more: set[str] = set()
    for event in events:
        if event.queue_id in wanted and event.new_queue_id:
            more.add(event.new_queue_id)
        if event.new_queue_id in wanted and event.queue_id:
            more.add(event.queue_id)
        if event.queue_id in wanted and event.orig_queue_id:
            more.add(event.orig_queue_id)
    return more - wanted


def relay_names(text: str) -> list[set[str]]:
    """Names for `host[ip]:port`, most specific first: the whole text, with the port, the
    host, the IP."""
    low = text.lower()
    host, _, rest = low.partition("[")
    ip, _, port_part = rest.partition("]")
    port = port_part.lstrip(":")
    levels = [{low}]
    if port:
        levels.append({f"{ip}:{port}", f"[{ip}]:{port}", f"{host}:{port}"})
    levels.append({host})
    if ip:
        levels.append({ip, f"[{ip}]"})
    return [level - {""} for level in levels]
