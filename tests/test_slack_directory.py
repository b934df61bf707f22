"""What the bot asks Slack about people (time zones, user group members), against the fake Slack
and against a Slack that cannot be reached at all."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.directory import GROUP_STALE_MAX_S, GROUP_TTL_S, Directory, GroupLookupFailed
from tests.fakeslack import Call, FakeSlack
from tests.sshd import free_port

BOT_TOKEN = "xoxb-directory-test-token"
DEFAULT_ZONE = ZoneInfo("Europe/Berlin")


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(valid_tokens=[BOT_TOKEN]) as fake_slack:
        yield fake_slack


async def test_zone_falls_back_to_the_default_when_slack_cannot_be_reached() -> None:
    """users.info failing at the network level (connection refused) gives the configured zone,
    not an exception."""
    client = AsyncWebClient(token=BOT_TOKEN, base_url=f"http://127.0.0.1:{free_port()}/api/")
    directory = Directory(client, DEFAULT_ZONE)
    assert await directory.zone_of("U1") == DEFAULT_ZONE


async def test_stale_group_members_are_used_briefly_then_access_fails_closed(
    fake: FakeSlack,
) -> None:
    """While Slack fails, the members last listed stand in for a while, but once they are older
    than GROUP_STALE_MAX_S the lookup fails (access control fails closed)."""
    fake.usergroups["S1"] = ["U1", "U2"]
    clock = Clock()
    directory = Directory(
        AsyncWebClient(token=BOT_TOKEN, base_url=fake.api_url), DEFAULT_ZONE, monotonic=clock
    )
    assert await directory.members_of("S1") == {"U1", "U2"}
    fake.fail_next("usergroups.users.list", "internal_error", times=10)
    clock.now += GROUP_TTL_S + 1  # expired: asked again, Slack fails, the old answer stands
    assert await directory.members_of("S1") == {"U1", "U2"}
    clock.now += GROUP_STALE_MAX_S - GROUP_TTL_S  # now older than the stale limit
    with pytest.raises(GroupLookupFailed, match="S1: internal_error"):
        await directory.members_of("S1")
    assert len(fake.calls_to("usergroups.users.list")) == 3
    fake.reset()  # Slack answers again: the group is back
    assert await directory.members_of("S1") == {"U1", "U2"}


async def test_concurrent_identical_lookups_share_one_request(fake: FakeSlack) -> None:
    """Five requests at once for the same user's zone, and for the same group, make one Slack
    call each; every caller gets the answer."""
    fake.usergroups["S1"] = ["U1"]
    fake.users["U1"] = {"tz": "Asia/Tokyo"}
    release = asyncio.Event()

    def slow(method: str) -> Any:
        async def handler(call: Call) -> dict[str, Any]:
            await release.wait()
            if method == "users.info":
                return {"ok": True, "user": {"id": "U1", "tz": "Asia/Tokyo"}}
            return {"ok": True, "users": ["U1"]}

        return handler

    fake.on("users.info", slow("users.info"))
    fake.on("usergroups.users.list", slow("usergroups.users.list"))
    directory = Directory(AsyncWebClient(token=BOT_TOKEN, base_url=fake.api_url), DEFAULT_ZONE)
    zones = asyncio.gather(*(directory.zone_of("U1") for _ in range(5)))
    groups = asyncio.gather(*(directory.members_of("S1") for _ in range(5)))
    await asyncio.sleep(0.2)
    release.set()
    assert await zones == [ZoneInfo("Asia/Tokyo")] * 5
    assert await groups == [frozenset({"U1"})] * 5
    assert len(fake.calls_to("users.info")) == 1
    assert len(fake.calls_to("usergroups.users.list")) == 1


async def test_a_caller_giving_up_does_not_cancel_the_shared_lookup(fake: FakeSlack) -> None:
    """When one caller stops waiting (an access check past its budget), the others still get
    the members from the same request."""
    fake.usergroups["S1"] = ["U1"]
    release = asyncio.Event()

    async def slow(call: Call) -> dict[str, Any]:
        await release.wait()
        return {"ok": True, "users": ["U1"]}

    fake.on("usergroups.users.list", slow)
    directory = Directory(AsyncWebClient(token=BOT_TOKEN, base_url=fake.api_url), DEFAULT_ZONE)
    impatient = asyncio.create_task(asyncio.wait_for(directory.members_of("S1"), 0.1))
    patient = asyncio.create_task(directory.members_of("S1"))
    with pytest.raises(TimeoutError):
        await impatient
    release.set()
    assert await patient == {"U1"}
    assert len(fake.calls_to("usergroups.users.list")) == 1
