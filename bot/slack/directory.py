"""What Slack tells us about people: who a user is, and a user group's members, cached.

Strategy: `users.info` gives the IANA zone a person set in Slack (dates they type are days in
that zone) and what kind of account it is (a guest, a member of another organisation in a shared
channel) for access control; `usergroups.users.list` gives a group's members. Both change
rarely, so answers are kept for a while (monotonic clock, injectable), and concurrent identical
lookups share one request. A failed lookup falls back: to the configured default zone for time
zones; for groups, to the last known members while they are at most GROUP_STALE_MAX_S old, then
to none — access control fails closed, and stale members never outlive a short Slack outage.
The workspace the bot is installed in comes from auth.test (once; serve passes it in).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_sdk.web.async_client import AsyncWebClient

from bot.i18n import ENGLISH, Language, code_of, language
from bot.slack.delivery import SLACK_CALL_FAILED, slack_error

logger = logging.getLogger("mailtrace.slack")

ZONE_TTL_S = 3600.0
GROUP_TTL_S = 300.0  # members are asked again after this long
GROUP_STALE_MAX_S = 600.0  # while Slack fails, known members are used at most this long

T = TypeVar("T")


class GroupLookupFailed(Exception):
    """Slack would not list a user group's members (and nothing recent enough is cached)."""


class PersonLookupFailed(Exception):
    """Slack would not say who a user is (users.info or auth.test failed)."""


@dataclass(frozen=True)
class Person:
    """What users.info says about an account, as far as mailtrace cares."""

    zone: ZoneInfo | None  # None: no zone in the profile, or one this machine does not know
    team_id: str
    enterprise_id: str
    restricted: bool  # a multi-channel guest
    ultra_restricted: bool  # a single-channel guest
    locale: str | None = None  # 'ja-JP' (users.info with include_locale); None: not given


@dataclass(frozen=True)
class Workspace:
    """Where the bot is installed (auth.test)."""

    team_id: str
    enterprise_id: str

    @classmethod
    def from_auth_test(cls, answer: Mapping[str, Any]) -> Workspace:
        return cls(str(answer.get("team_id") or ""), str(answer.get("enterprise_id") or ""))


class Directory:
    def __init__(
        self,
        client: AsyncWebClient,
        default_zone: ZoneInfo,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        workspace: Workspace | None = None,
    ) -> None:
        self.client = client
        self.default_zone = default_zone
        self.monotonic = monotonic
        self._workspace = workspace
        self._people: dict[str, tuple[float, Person]] = {}
        self._groups: dict[str, tuple[float, frozenset[str]]] = {}
        self._person_lookups: dict[str, asyncio.Task[Person]] = {}
        self._group_lookups: dict[str, asyncio.Task[frozenset[str]]] = {}
        self._workspace_lookups: dict[str, asyncio.Task[Workspace]] = {}

    async def zone_of(self, user: str) -> ZoneInfo:
        """The user's time zone from their Slack profile (the default zone if unknown)."""
        try:
            person = await self.person(user)
        except PersonLookupFailed:
            return self.default_zone
        return person.zone or self.default_zone

    async def language_of(self, user: str) -> Language:
        """The user's language from their Slack locale (English if unknown or not spoken)."""
        try:
            person = await self.person(user)
        except PersonLookupFailed:
            return ENGLISH
        return language(code_of(person.locale) or "en")

    def cached_language(self, user: str) -> Language:
        """The language of a user already looked up, without asking Slack (English if not)."""
        cached = self._people.get(user)
        locale = cached[1].locale if cached is not None else None
        return language(code_of(locale) or "en")

    async def person(self, user: str) -> Person:
        """Who `user` is; raises PersonLookupFailed if Slack won't say."""
        cached = self._people.get(user)
        if cached is not None and self.monotonic() - cached[0] < ZONE_TTL_S:
            return cached[1]
        return await _shared(self._person_lookups, user, lambda: self._look_up_person(user))

    async def workspace(self) -> Workspace:
        """The workspace (and Enterprise organisation) the bot is installed in."""
        if self._workspace is not None:
            return self._workspace
        return await _shared(self._workspace_lookups, "", self._look_up_workspace)

    async def members_of(self, group: str) -> frozenset[str]:
        """The user IDs in a user group; raises GroupLookupFailed if Slack won't say."""
        cached = self._groups.get(group)
        if cached is not None and self.monotonic() - cached[0] < GROUP_TTL_S:
            return cached[1]
        return await _shared(self._group_lookups, group, lambda: self._look_up_members(group))

    async def _look_up_person(self, user: str) -> Person:
        now = self.monotonic()
        try:
            response = await self.client.users_info(user=user, include_locale=True)
        except SLACK_CALL_FAILED as exc:
            logger.warning("user_lookup_failed user=%s error=%s", user, slack_error(exc))
            raise PersonLookupFailed(f"{user}: {slack_error(exc)}") from exc  # not cached
        info = response.get("user") or {}
        zone: ZoneInfo | None = None
        name = info.get("tz")
        if isinstance(name, str) and name:
            try:
                zone = ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                logger.warning("user_zone_unknown user=%s zone=%r", user, name)
        enterprise = info.get("enterprise_user") or {}
        locale = info.get("locale")
        person = Person(
            zone=zone,
            locale=locale if isinstance(locale, str) and locale else None,
            team_id=str(info.get("team_id") or ""),
            enterprise_id=str(enterprise.get("enterprise_id") or info.get("enterprise_id") or ""),
            restricted=bool(info.get("is_restricted")),
            ultra_restricted=bool(info.get("is_ultra_restricted")),
        )
        self._people[user] = (now, person)
        return person

    async def _look_up_workspace(self) -> Workspace:
        try:
            response = await self.client.auth_test()
        except SLACK_CALL_FAILED as exc:
            raise PersonLookupFailed(f"auth.test: {slack_error(exc)}") from exc
        data = response.data if isinstance(response.data, dict) else {}
        self._workspace = Workspace.from_auth_test(data)
        return self._workspace

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
