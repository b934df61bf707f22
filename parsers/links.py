"""Links between messages that need every message at once: relays on loopback and the
re-injected copy after a content filter.

Strategy: a relay on loopback (127.0.0.0/8, ::1, localhost) is taken for a content filter on the
same host unless the caller's resolver names another configured server. A copy re-injected by
the filter names its original with `orig_queue_id=` on its client= line (or the original's
delivery says "queued as COPY"); once all messages are frozen, each original gets a REINJECTED
link to its copy.
"""

from __future__ import annotations

from collections.abc import Callable

from parsers.models import Link, LinkKind, Message

# Where "status=sent (... queued as NEWID)" hands the message on to: given the relay= text and
# the host it was logged on, the configured server that has NEWID, or None when not ours.
RelayResolver = Callable[[str, str], str | None]

_LOCAL_RELAYS = ("127.", "[127.", "localhost", "::1", "[::1]", "[ipv6:::1]")


def resolve_local_relays(relay: str, host: str) -> str | None:
    """The default resolver: a relay on loopback (a content filter) is the same host."""
    name = relay.lower()
    if "[" in name:
        inner = name.split("[", 1)[1].split("]", 1)[0]
        if inner.startswith(("127.", "::1", "ipv6:::1")) or name.startswith("localhost"):
            return host
        return None
    return host if name.startswith(_LOCAL_RELAYS) else None


def link_reinjections(messages: list[Message]) -> list[Message]:
    """Give each original the REINJECTED link to its copy (found via orig_queue_id)."""
    extra: dict[tuple[str, str], list[Link]] = {}
    for m in messages:
        for link in m.links:
            if link.kind is LinkKind.PREVIOUS_HOP and m.queue_id is not None:
                back = Link(kind=LinkKind.REINJECTED, queue_id=m.queue_id, host=m.host)
                extra.setdefault((m.host, link.queue_id), []).append(back)
    if not extra:
        return messages
    out = []
    for m in messages:
        more = extra.get((m.host, m.queue_id or ""))
        if more:
            m = m.model_copy(update={"links": tuple(dict.fromkeys((*m.links, *more)))})
        out.append(m)
    return out
