"""The exception tree. Callers catch these, never a library's own.

MailtraceError                 anything mailtrace raises on purpose
├── UsageError                 the query or the command line is wrong (exit status 2)
├── ConfigError                the configuration file is missing, unreadable or invalid
└── SourceError                one server (or local source) failed; others go on
    ├── ConnectFailed          unreachable, refused, timed out while connecting
    ├── AuthFailed             no key accepted
    ├── HostKeyRejected        host key unknown or changed (known_hosts)
    ├── CommandFailed          grep/ls exited with an error (stderr kept, secrets never)
    │   └── RideIncomplete     pass 1 with pass 2 riding did not say it ended (read it again)
    ├── CommandTimeout         the remote command ran past its time limit
    └── NoLogFiles             nothing matched the configured log globs
"""

from __future__ import annotations

from parsers.i18n import ENGLISH, N_, Translator


class MailtraceError(Exception):
    """Base of every error mailtrace raises on purpose. The message is for the person asking."""


class UsageError(MailtraceError):
    """The query does not fit the grammar; the message says how to write it."""


class ConfigError(MailtraceError):
    """The configuration cannot be used as it is."""


class SourceError(MailtraceError):
    """One log source failed. `reason` is a short phrase for a per-server line."""

    reason = N_("failed")

    def __init__(self, source: str, detail: str) -> None:
        super().__init__(f"{source}: {self.reason}: {detail}")
        self.source = source
        self.detail = detail


class ConnectFailed(SourceError):
    reason = N_("unreachable")


class AuthFailed(SourceError):
    reason = N_("authentication failed")


class HostKeyRejected(SourceError):
    reason = N_("host key not verified")


class CommandFailed(SourceError):
    reason = N_("command failed")


class RideIncomplete(CommandFailed):
    """Pass 1's command with pass 2 riding ended without its end mark (awk missing, refused
    or killed on the server): its lines may be cut. The search reads pass 1 again without
    riding; should this escape, the server is reported failed, never "nothing found"."""


class CommandTimeout(SourceError):
    reason = N_("timed out")


class NoLogFiles(SourceError):
    reason = N_("no log files")


# stable words (JSON `failures[].reason`), translated where people read them
FAILURE_REASONS = frozenset(
    cls.reason
    for cls in (
        SourceError,
        ConnectFailed,
        AuthFailed,
        HostKeyRejected,
        CommandFailed,
        CommandTimeout,
        NoLogFiles,
    )
)


def failure_words(reason: str, tr: Translator = ENGLISH) -> str:
    """A server failure's short reason, e.g. 'unreachable', in the reader's language."""
    return tr.gettext(reason) if reason in FAILURE_REASONS else reason
