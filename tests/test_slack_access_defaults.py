"""Safe by default: guests and people of other organisations are refused and audited; the service
log never quotes a refused request; an answer that lost a server is not audited as complete,
and one that read nothing is audited as "couldn't search"."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.errors import CommandFailed
from bot.settings import ServerConfig, Settings, SlackConfig
from bot.slack.audit import Outcome
from bot.slack.logs import KeyValueFormatter, LibraryPrivacyFilter
from bot.sources.runner import LocalRunner
from bot.sources.source import LogSource
from tests import test_slack_app
from tests.fakeslack import signed_slash_command_request
from tests.test_slack_app import HOWTO_LOG, BotFactory, log_settings

# The app tests' fixtures, by name: the fake Slack and a factory of served Bolt apps.
fake = test_slack_app.fake
make_bot = test_slack_app.make_bot

QUERY = "sender2@example.net 2024-05-13"


@pytest.mark.parametrize(
    ("profile", "reason"),
    [
        ({"is_restricted": True}, "guest account"),
        ({"is_restricted": True, "is_ultra_restricted": True}, "single-channel guest account"),
        ({"team_id": "T9OTHER"}, "user of another organisation (team T9OTHER)"),
    ],
)
async def test_guests_and_other_organisations_are_refused_by_default(
    make_bot: BotFactory, profile: dict[str, object], reason: str
) -> None:
    """With no access lists, a guest account or a user of another team is refused politely,
    and the audit log records the refusal and why; a full member is answered."""
    bot = await make_bot(log_settings(HOWTO_LOG))
    bot.fake.users["UGUEST"] = profile
    _, body, _ = await bot.command(QUERY, user="UGUEST")
    assert body["text"].startswith("Sorry, ")
    assert "Searching" not in body["text"]
    _, member, _ = await bot.command(QUERY, user="UMEMBER")
    assert "Searching" in member["text"]
    entries = {e.user: e for e in await bot.audit.wait(2)}
    assert entries["UGUEST"].outcome is Outcome.REFUSED
    assert entries["UGUEST"].allowed is False
    assert entries["UGUEST"].reason == reason
    assert entries["UMEMBER"].outcome is Outcome.ANSWERED


async def test_same_enterprise_organisation_counts_as_home(make_bot: BotFactory) -> None:
    """On Enterprise Grid, a full member of another workspace of the same organisation may ask."""
    bot = await make_bot(log_settings(HOWTO_LOG))
    bot.fake.users["UGRID"] = {"team_id": "T2", "enterprise_user": {"enterprise_id": "E1"}}
    original = bot.fake._auth_test
    bot.fake.on("auth.test", lambda call: {**original(call), "enterprise_id": "E1"})
    _, body, _ = await bot.command(QUERY, user="UGRID")
    assert "Searching" in body["text"]


async def test_a_guest_listed_by_id_may_ask(make_bot: BotFactory) -> None:
    """allowed_users is the explicit way to let a guest in."""
    bot = await make_bot(log_settings(HOWTO_LOG, allowed_users=("UGUEST",)))
    bot.fake.users["UGUEST"] = {"is_restricted": True}
    _, body, _ = await bot.command(QUERY, user="UGUEST")
    assert "Searching" in body["text"]


async def test_a_guest_in_an_allowed_user_group_is_still_refused(make_bot: BotFactory) -> None:
    """Membership of an allowed user group does not let a guest account in."""
    bot = await make_bot(log_settings(HOWTO_LOG, allowed_usergroups=("S1",)))
    bot.fake.usergroups["S1"] = ["UGUEST"]
    bot.fake.users["UGUEST"] = {"is_restricted": True}
    _, body, _ = await bot.command(QUERY, user="UGUEST")
    assert body["text"].startswith("Sorry, guest accounts")


async def test_a_failed_user_lookup_refuses(make_bot: BotFactory) -> None:
    """When Slack will not say who the asker is, access fails closed (and says to retry)."""
    bot = await make_bot(log_settings(HOWTO_LOG))
    bot.fake.fail_next("users.info", "user_not_found")
    _, body, _ = await bot.command(QUERY, user="UWHO")
    assert "try again" in body["text"]
    [entry] = await bot.audit.wait(1)
    assert entry.reason.startswith("user lookup failed")


async def test_the_start_up_log_says_who_can_search(
    make_bot: BotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """With no access lists, the start-up log says plainly that every full member may search."""
    with caplog.at_level(logging.INFO, logger="mailtrace.slack"):
        await make_bot(log_settings(HOWTO_LOG))
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("access_")]
    assert line.startswith('access_open who="every full member of ')
    assert "guests and other organisations are refused" in line
    assert 'where="any conversation"' in line


async def test_a_bad_signature_request_leaves_no_request_contents_in_the_log(
    make_bot: BotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A request with a wrong signature is refused (401) and the service log, as written,
    holds neither its user ID, its query text, nor its body."""
    bot = await make_bot()
    body, headers = signed_slash_command_request(
        "not-the-signing-secret",
        text="private-person@example.net 2024-05-13",
        user_id="USECRETUSER",
        channel_id="C1",
        response_url=bot.fake.response_url("r1"),
        timestamp=int(time.time()),
    )
    with caplog.at_level(logging.DEBUG):
        status, _, _ = await bot.post(body, headers)
    assert status == 401
    formatter, privacy = KeyValueFormatter(), LibraryPrivacyFilter()
    written = [formatter.format(r) for r in caplog.records if privacy.filter(r)]
    text = "\n".join(written)
    assert "request_refused reason=bad_signature" in text
    assert "USECRETUSER" not in text
    assert "private-person" not in text
    assert "response_url" not in text


class RefusingRunner(LocalRunner):
    """A server whose sshd keeps refusing new sessions (what the SSH runner raises then)."""

    async def batches(self, command: str) -> AsyncIterator[list[str]]:
        raise CommandFailed(self.name, "the server refused a new SSH session: open failed")
        yield []  # pragma: no cover - makes this an async generator


async def test_an_answer_missing_a_server_is_audited_as_incomplete(make_bot: BotFactory) -> None:
    """When one server fails and the other answers, the thread is posted but the audit entry
    says `incomplete` and names the lost server, never `answered`."""
    good = ServerConfig(name="mx1", local=True, logs=(str(HOWTO_LOG),), year=2024)
    lost = ServerConfig(name="mx2", local=True, logs=(str(HOWTO_LOG),), year=2024)
    settings = Settings(default_days=None, servers=(good, lost), slack=SlackConfig())

    def sources() -> list[LogSource]:
        return [
            LogSource(good, LocalRunner("mx1"), settings.limits),
            LogSource(lost, RefusingRunner("mx2"), settings.limits),
        ]

    bot = await make_bot(settings, sources)
    await bot.command(QUERY)
    [entry] = await bot.audit.wait(1)
    assert entry.outcome is Outcome.INCOMPLETE
    assert entry.reason.startswith("mx2: ")
    assert entry.counts["failures"] == 1
    assert entry.counts["messages"] >= 1


async def test_an_answer_with_nothing_read_is_audited_as_couldnt_search(
    make_bot: BotFactory, tmp_path: Path
) -> None:
    """When no server could be searched at all (here the only one has no log file where the
    configuration says), the audit says `couldnt_search` with the reason, not `nothing_found`
    or `incomplete`."""
    missing = ServerConfig(name="mx1", local=True, logs=(f"{tmp_path}/none*",), year=2024)
    settings = Settings(default_days=None, servers=(missing,), slack=SlackConfig())
    bot = await make_bot(settings)
    await bot.command(QUERY)
    [entry] = await bot.audit.wait(1)
    assert entry.outcome is Outcome.COULDNT_SEARCH
    assert entry.reason == "mx1: no log files"
    parent, _ = bot.thread()
    assert "couldn't search" in test_slack_app.text_of(parent)
