"""What Slack tells us about people: a user's time zone and a user group's members, cached.

Strategy: `users.info` gives the IANA zone a person set in Slack (dates they type are days in
that zone); `usergroups.users.list` gives a group's members for access control. Both change
rarely, so answers are kept for a while (monotonic clock, injectable), and concurrent identical
lookups share one request. A failed lookup falls back: to the configured default zone for time
zones; for groups, to the last known members while they are at most GROUP_STALE_MAX_S old, then
to none — access control fails closed, and stale members never outlive a short Slack outage.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.delivery import SLACK_CALL_FAILED, slack_error

logger = logging.getLogger("mailtrace.slack")

ZONE_TTL_S = 3600.0
GROUP_TTL_S = 300.0  # members are asked again after this long
GROUP_STALE_MAX_S = 600.0  # while Slack fails, known members are used at most this long

# users.info failed, or named a zone this machine does not know
ZONE_LOOKUP_FAILED: tuple[type[Exception], ...] = (
    *SLACK_CALL_FAILED,
    ZoneInfoNotFoundError,
    ValueError,
)

T = TypeVar("T")


class GroupLookupFailed(Exception):
    """Slack would not list a user group's members (and nothing recent enough is cached)."""


class Directory:
    def __init__(
        self,
        client: AsyncWebClient,
        default_zone: ZoneInfo,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.default_zone = default_zone
        self.monotonic = monotonic
        self._zones: dict[str, tuple[float, ZoneInfo]] = {}
        self._groups: dict[str, tuple[float, frozenset[str]]] = {}
        self._zone_lookups: dict[str, asyncio.Task[ZoneInfo]] = {}
        self._group_lookups: dict[str, asyncio.Task[frozenset[str]]] = {}

    async def zone_of(self, user: str) -> ZoneInfo:
        """The user's time zone from their Slack profile (the default zone if unknown)."""
        cached = self._zones.get(user)
        if cached is not None and self.monotonic() - cached[0] < ZONE_TTL_S:
            return cached[1]
        return await _shared(self._zone_lookups, user, lambda: self._look_up_zone(user))

    async def members_of(self, group: str) -> frozenset[str]:
        """The user IDs in a user group; raises GroupLookupFailed if Slack won't say."""
        cached = self._groups.get(group)
        if cached is not None and self.monotonic() - cached[0] < GROUP_TTL_S:
            return cached[1]
        return await _shared(self._group_lookups, group, lambda: self._look_up_members(group))

    async def _look_up_zone(self, user: str) -> ZoneInfo:
        now = self.monotonic()
        zone = self.default_zone
        try:
            response = await self.client.users_info(user=user)
            name = (response.get("user") or {}).get("tz")
            if isinstance(name, str) and name:
                zone = ZoneInfo(name)
        except ZONE_LOOKUP_FAILED as exc:
            logger.warning("user_zone_unknown user=%s error=%r default=%s", user, exc, zone)
            return zone  # not cached: the next request asks again
        self._zones[user] = (now, zone)
        return zone

    async def _look_up_members(self, group: str) -> frozenset[str]:
        now = self.monotonic()
        try:
            response = await self.client.usergroups_users_list(usergroup=group)
        except SLACK_CALL_FAILED as exc:
            error = slack_error(exc)
            cached = self._groups.get(group)
            age = None if cached is None else self.monotonic() - cached[0]
            logger.error(
                "usergroup_lookup_failed usergroup=%s error=%s cached_age_s=%s",
                group,
                error,
                "-" if age is None else f"{age:.0f}",
            )
            if cached is not None and age is not None and age < GROUP_STALE_MAX_S:
                return cached[1]  # stale but recent: better than refusing everyone
            raise GroupLookupFailed(f"{group}: {error}") from exc
        members = frozenset(str(u) for u in response.get("users") or ())
        self._groups[group] = (now, members)
        return members


async def _shared(
    lookups: dict[str, asyncio.Task[T]], key: str, lookup: Callable[[], Coroutine[Any, Any, T]]
) -> T:
    """The result of `lookup()`, run once for all callers asking for `key` at the same time.

    The lookup runs in its own task, shielded: one caller giving up (an access check past its
    budget) does not cancel it for the others.
    """
    task = lookups.get(key)
    if task is None:
        task = asyncio.create_task(lookup())
        lookups[key] = task

        def forget(done: asyncio.Task[T]) -> None:
            lookups.pop(key, None)
            if not done.cancelled():
                done.exception()  # retrieved here, so no caller's absence makes it "unhandled"

        task.add_done_callback(forget)
    return await asyncio.shield(task)
