"""What Slack tells us about people: a user's time zone and a user group's members, cached.

Strategy: `users.info` gives the IANA zone a person set in Slack (dates they type are days in
that zone); `usergroups.users.list` gives a group's members for access control. Both change
rarely, so answers are kept for a while (monotonic clock, injectable). A failed lookup falls
back: to the configured default zone for time zones, to the last known members (or none) for
groups — access control fails closed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

logger = logging.getLogger("mailtrace.slack")

ZONE_TTL_S = 3600.0
GROUP_TTL_S = 300.0


class GroupLookupFailed(Exception):
    """Slack would not list a user group's members (and nothing is cached)."""


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

    async def zone_of(self, user: str) -> ZoneInfo:
        """The user's time zone from their Slack profile (the default zone if unknown)."""
        cached = self._zones.get(user)
        now = self.monotonic()
        if cached is not None and now - cached[0] < ZONE_TTL_S:
            return cached[1]
        zone = self.default_zone
        try:
            response = await self.client.users_info(user=user)
            name = (response.get("user") or {}).get("tz")
            if isinstance(name, str) and name:
                zone = ZoneInfo(name)
        except (SlackApiError, SlackClientError, ZoneInfoNotFoundError, ValueError) as exc:
            logger.warning("user_zone_unknown user=%s error=%r default=%s", user, exc, zone)
            return zone  # not cached: the next request asks again
        self._zones[user] = (now, zone)
        return zone

    async def members_of(self, group: str) -> frozenset[str]:
        """The user IDs in a user group; raises GroupLookupFailed if Slack won't say."""
        cached = self._groups.get(group)
        now = self.monotonic()
        if cached is not None and now - cached[0] < GROUP_TTL_S:
            return cached[1]
        try:
            response = await self.client.usergroups_users_list(usergroup=group)
        except (SlackApiError, SlackClientError) as exc:
            error = exc.response.get("error") if isinstance(exc, SlackApiError) else repr(exc)
            logger.error("usergroup_lookup_failed usergroup=%s error=%s", group, error)
            if cached is not None:
                return cached[1]  # stale but real: better than refusing everyone
            raise GroupLookupFailed(f"{group}: {error}") from exc
        members = frozenset(str(u) for u in response.get("users") or ())
        self._groups[group] = (now, members)
        return members
