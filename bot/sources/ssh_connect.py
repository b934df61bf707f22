"""Opening one SSH connection (asyncssh) to a `Hop`: host key check, client keys, keepalives,
and every failure as one of our errors with a sentence for the person asking.

Strategy: the YAML is the whole configuration (~/.ssh/config is not read); no password or
keyboard-interactive login. Key passphrases come from the environment and are never put into a
message or a log line. asyncssh and socket errors are translated here, at the boundary, into
bot.errors (`describe_error` words those met later, on an open connection).
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Any

import asyncssh

from bot.errors import AuthFailed, ConnectFailed, HostKeyRejected
from bot.sources.ssh_hops import Hop

log = logging.getLogger(__name__)

PASSPHRASE_ENV = "MAILTRACE_SSH_KEY_PASSPHRASE"  # noqa: S105 (the variable's name, not a secret)
KEEPALIVE_INTERVAL = 30.0  # seconds between keepalives on an idle connection
KEEPALIVE_COUNT_MAX = 3  # unanswered keepalives before the connection counts as lost


async def open_connection(
    hop: Hop, name: str, tunnel: asyncssh.SSHClientConnection | None
) -> asyncssh.SSHClientConnection:
    """A new connection to `hop`, through `tunnel` (the connection to the hop before it);
    messages name the configured server `name`, and the jump host when `hop` is one."""
    where = f"{hop.host} port {hop.port}"
    prefix = "" if hop.label == name else f"jump host {hop.label} ({where}): "
    if hop.insecure:
        log.warning(
            "HOST KEY CHECK DISABLED for %s (%s): insecure_no_host_key_check is set, so "
            "anyone on the network path can pose as this server. Never use this in production.",
            hop.label,
            where,
        )
    options: dict[str, Any] = {
        "username": hop.user,
        "known_hosts": None if hop.insecure else _known_hosts(hop, name, prefix),
        "client_keys": _client_keys(hop, name, prefix),
        "agent_path": os.environ.get("SSH_AUTH_SOCK") if hop.use_agent else None,
        "password_auth": False,
        "kbdint_auth": False,
        "config": None,  # the YAML is the whole configuration; ~/.ssh/config is not read
        "connect_timeout": hop.connect_timeout,
        "login_timeout": hop.connect_timeout,
        "keepalive_interval": KEEPALIVE_INTERVAL,
        "keepalive_count_max": KEEPALIVE_COUNT_MAX,
    }
    if tunnel is not None:
        options["tunnel"] = tunnel
    log.debug("connecting to %s (%s as %s)", hop.label, where, hop.user)
    try:
        return await asyncssh.connect(hop.host, hop.port, **options)
    except asyncssh.HostKeyNotVerifiable as exc:
        raise HostKeyRejected(
            name,
            f"{prefix}not in known_hosts or changed; check known_hosts for {hop.address}",
        ) from exc
    except asyncssh.PermissionDenied as exc:
        raise AuthFailed(
            name,
            f"{prefix}{hop.host} accepted none of the bot's keys for user {hop.user}; "
            "check that user's authorized_keys there",
        ) from exc
    except asyncssh.ChannelOpenError as exc:  # the jump host could not reach the server
        raise ConnectFailed(
            name, f"the jump host could not open a connection to {where}: {exc.reason}"
        ) from exc
    except asyncssh.DisconnectError as exc:
        raise ConnectFailed(name, f"{prefix}{where} ended the SSH handshake: {exc.reason}") from exc
    except TimeoutError as exc:
        raise ConnectFailed(
            name, f"{prefix}no SSH answer from {where} within {hop.connect_timeout:g} s"
        ) from exc
    except ConnectionRefusedError as exc:
        raise ConnectFailed(
            name, f"{prefix}connection refused by {where}; is sshd running there?"
        ) from exc
    except socket.gaierror as exc:
        raise ConnectFailed(name, f"{prefix}cannot resolve host name {hop.host}") from exc
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConnectFailed(name, f"{prefix}cannot connect to {where}: {reason}") from exc
    except asyncssh.Error as exc:
        raise ConnectFailed(name, f"{prefix}SSH to {where} failed: {exc.reason}") from exc


def _known_hosts(hop: Hop, name: str, prefix: str) -> asyncssh.SSHKnownHosts:
    path = Path(hop.known_hosts or "~/.ssh/known_hosts").expanduser()
    try:
        return asyncssh.read_known_hosts(str(path))
    except OSError as exc:
        raise HostKeyRejected(
            name, f"{prefix}cannot read the known_hosts file {path}: {exc.strerror}"
        ) from exc
    except ValueError as exc:
        raise HostKeyRejected(name, f"{prefix}the known_hosts file {path} is invalid") from exc


def _client_keys(hop: Hop, name: str, prefix: str) -> list[asyncssh.SSHKey] | tuple[()]:
    if not hop.keys:
        return ()  # asyncssh's defaults: ~/.ssh/id_ed25519, id_ecdsa, id_rsa …
    passphrase = os.environ.get(PASSPHRASE_ENV) or None
    keys = []
    for path in hop.keys:
        try:
            keys.append(asyncssh.read_private_key(path, passphrase))
        except OSError as exc:
            raise AuthFailed(name, f"{prefix}cannot read key file {path}: {exc.strerror}") from exc
        except asyncssh.KeyEncryptionError as exc:
            # asyncssh's messages name the problem, never the passphrase itself.
            if "ncorrect passphrase" in str(exc):
                detail = f"wrong passphrase in {PASSPHRASE_ENV}"
            elif "bcrypt" in str(exc):
                detail = "the Python package bcrypt is needed for encrypted OpenSSH keys"
            else:
                detail = str(exc)
            raise AuthFailed(name, f"{prefix}cannot decrypt key file {path}: {detail}") from exc
        except asyncssh.KeyImportError as exc:
            if passphrase is None and "assphrase" in str(exc):
                detail = f"is encrypted; set {PASSPHRASE_ENV}"
            else:
                detail = "is not a private key asyncssh can read"
            raise AuthFailed(name, f"{prefix}key file {path} {detail}") from exc
    return keys


def describe_error(exc: BaseException) -> str:
    """An asyncssh or socket error in a few words."""
    if isinstance(exc, asyncssh.Error):
        return str(exc.reason)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
