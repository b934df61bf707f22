"""What one server's search has gathered, and reading its lines against the line cap.

Strategy: every grep of a search goes through `read` (or `counted` for a source's own
generator), which counts each line against `max_lines` and, at the cap, ends the remote command
at once and marks the server's answer truncated. Lines come in lists (as the source read them);
the cap still counts lines, the first over it and those after it are never used.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import datetime
from typing import Any

from bot.sources.source import LogFile, LogSource, Plan
from parsers.models import LogEvent


class ServerState:
    """What one server's search has gathered so far."""

    def __init__(self, source: LogSource) -> None:
        self.source = source
        self.plan = Plan()  # this question's pass 1 here (the source is shared by questions)
        self.files: list[LogFile] = []
        self.searched: set[str] = set()
        self.events: list[LogEvent] = []
        self.wanted: set[str] = set()  # queue IDs to trace on this server
        self.traced: set[str] = set()
        self.handovers: dict[str, datetime | None] = {}  # hop ID -> when it was handed over
        self.lines = 0
        self.truncated = False
        self.other_days: set[str] = set()
        self.problems: list[str] = []  # files that could not be read
        self.hits: set[str] = set()  # raw lines that named the target (pass 1)
        self.hit_ids: set[str] = set()  # and their queue IDs
        self.untraced = 0  # messages found by pass 1 but beyond max_messages
        # near misses seen by pass 1 (for the diagnosis of an empty answer)
        self.other_times: set[datetime] = set()  # the asked day(s), outside the asked hours
        self.other_role: list[str] = []  # the target in a line in another role
        self.connections: list[str] = []  # the client came and went without mail
        self.similar: list[str] = []


async def read(
    st: ServerState, files: list[LogFile], patterns: list[str], **options: Any
) -> AsyncIterator[LogEvent]:
    """grep on this server, counting lines against the cap."""
    if st.truncated or not files:
        return
    search = st.source.grep_batches(files, patterns, problems=st.problems, plan=st.plan, **options)
    async with contextlib.aclosing(counted(st, search)) as batches:
        async for batch in batches:
            for event in batch:
                yield event


async def counted(
    st: ServerState, search: AsyncGenerator[list[LogEvent], None]
) -> AsyncGenerator[list[LogEvent], None]:
    """The events of a search (in lists as they come), counted against the cap. At the cap it
    stops, and the remote command is ended at once (aclosing), not whenever the generator is
    collected."""
    limit = st.source.limits.max_lines
    async with contextlib.aclosing(search) as batches:
        async for batch in batches:
            room = limit - st.lines
            if len(batch) <= room:
                st.lines += len(batch)
                yield batch
                continue
            if room > 0:
                st.lines = limit
                yield batch[:room]
            st.lines += 1  # the line past the cap, not read
            st.truncated = True
            return
