"""Who may ask, and where: allowed users, user groups and channels from the configuration.

Strategy: only full members of the workspace the bot is installed in may ask: guests (restricted
and ultra-restricted accounts) and people of other organisations in shared channels are refused,
unless listed by ID in allowed_users. With no lists configured every full member may ask in any
conversation. When
users or user groups are listed, the asker must be one of the users or a member of one of the
groups; when channels are listed, the question must come from one of them (a DM with the bot is
a conversation too: list it, or it is refused). Refusals carry a polite message for the asker and
a short reason for the audit log. A lookup that fails refuses: access control fails closed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.settings import SlackConfig
from bot.slack.directory import Directory, GroupLookupFailed, PersonLookupFailed, Workspace
from parsers.i18n import N_, Translator

logger = logging.getLogger("mailtrace.slack")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""  # for the audit log
    message: str = ""  # for the person asking: a msgid, `{user}` their Slack user ID

    def worded(self, tr: Translator, user: str) -> str:
        """The refusal in the asker's language."""
        return tr.gettext(self.message).format(user=user)

    @classmethod
    def allow(cls) -> Decision:
        return cls(allowed=True)


class AccessPolicy:
    def __init__(self, config: SlackConfig, directory: Directory) -> None:
        self.config = config
        self.directory = directory

    @property
    def restricted(self) -> bool:
        c = self.config
        return bool(c.allowed_users or c.allowed_usergroups or c.allowed_channels)

    async def check(self, user: str, channel: str) -> Decision:
        """May `user` ask in `channel`?"""
        c = self.config
        if c.allowed_channels and channel not in c.allowed_channels:
            return Decision(
                allowed=False,
                reason="channel not allowed",
                message=N_(
                    "Sorry, /mailtrace isn't enabled in this conversation. Please ask in one of "
                    "the channels where the ops team has enabled it."
                ),
            )
        if user in c.allowed_users:
            return Decision.allow()
        refusal = await self._full_member_or_refusal(user)
        if refusal is not None:
            return refusal
        if not c.allowed_usergroups:
            return Decision.allow() if not c.allowed_users else _not_listed()
        failed: list[str] = []
        for group in c.allowed_usergroups:
            try:
                if user in await self.directory.members_of(group):
                    return Decision.allow()
            except GroupLookupFailed as exc:
                failed.append(str(exc))
        if failed:
            return Decision(
                allowed=False,
                reason="usergroup lookup failed: " + "; ".join(failed),
                message=N_(
                    "Sorry, I couldn't check whether you may use /mailtrace (Slack didn't list "
                    "the allowed user group). Please try again in a few minutes."
                ),
            )
        return _not_listed()

    async def _full_member_or_refusal(self, user: str) -> Decision | None:
        """None for a full member of the bot's workspace (or organisation), else a refusal."""
        try:
            person = await self.directory.person(user)
            home = await self.directory.workspace()
        except PersonLookupFailed as exc:
            return Decision(
                allowed=False,
                reason=f"user lookup failed: {exc}",
                message=N_(
                    "Sorry, I couldn't check whether you may use /mailtrace (Slack didn't tell "
                    "me who you are). Please try again in a few minutes."
                ),
            )
        if person.ultra_restricted or person.restricted:
            kind = "single-channel guest" if person.ultra_restricted else "guest"
            return Decision(
                allowed=False,
                reason=f"{kind} account",
                message=N_(
                    "Sorry, guest accounts can't use /mailtrace. If you need it, ask the ops "
                    "team to add you by name (your Slack user ID is {user})."
                ),
            )
        same_org = bool(home.enterprise_id) and person.enterprise_id == home.enterprise_id
        if person.team_id != home.team_id and not same_org:
            return Decision(
                allowed=False,
                reason=f"user of another organisation (team {person.team_id or 'unknown'})",
                message=N_(
                    "Sorry, /mailtrace is only for members of the workspace that installed it."
                ),
            )
        return None


def _not_listed() -> Decision:
    return Decision(
        allowed=False,
        reason="user not allowed",
        message=N_(
            "Sorry, you're not on the list of people who can use /mailtrace. If you need "
            "it, ask the ops team to add you (your Slack user ID is {user})."
        ),
    )


def log_access(config: SlackConfig, workspace: Workspace | None) -> None:
    """Say at start-up, in plain words, who may search."""
    team = workspace.team_id if workspace is not None else "the installing workspace"
    members = f"full members of {team}; guests and other organisations are refused"
    if not (config.allowed_users or config.allowed_usergroups or config.allowed_channels):
        logger.warning(
            'access_open who="every %s" where="any conversation" note="%s"',
            members.replace("full members", "full member", 1),
            "set slack.allowed_users / allowed_usergroups / allowed_channels to narrow it",
        )
        return
    who = "every " + members.replace("full members", "full member", 1)
    if config.allowed_users or config.allowed_usergroups:
        who = (
            f"users {','.join(config.allowed_users) or '-'} and members of user groups "
            f"{','.join(config.allowed_usergroups) or '-'} ({members})"
        )
    where = ",".join(config.allowed_channels) or "any conversation"
    logger.info('access_restricted who="%s" where="%s"', who, where)
