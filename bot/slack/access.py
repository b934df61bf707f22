"""Who may ask, and where: allowed users, user groups and channels from the configuration.

Strategy: with no lists configured anyone in the workspace may ask in any conversation. When
users or user groups are listed, the asker must be one of the users or a member of one of the
groups; when channels are listed, the question must come from one of them (a DM with the bot is
a conversation too: list it, or it is refused). Refusals carry a polite message for the asker and
a short reason for the audit log. A group lookup that fails refuses: access control fails closed.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.settings import SlackConfig
from bot.slack.directory import Directory, GroupLookupFailed


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""  # for the audit log
    message: str = ""  # for the person asking

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
                message=(
                    "Sorry, /mailtrace isn't enabled in this conversation. Please ask in one of "
                    "the channels where the ops team has enabled it."
                ),
            )
        if not (c.allowed_users or c.allowed_usergroups):
            return Decision.allow()
        if user in c.allowed_users:
            return Decision.allow()
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
                message=(
                    "Sorry, I couldn't check whether you may use /mailtrace (Slack didn't list "
                    "the allowed user group). Please try again in a few minutes."
                ),
            )
        return Decision(
            allowed=False,
            reason="user not allowed",
            message=(
                "Sorry, you're not on the list of people who can use /mailtrace. If you need "
                f"it, ask the ops team to add you (your Slack user ID is {user})."
            ),
        )
