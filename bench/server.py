"""Local sshds for the benchmark, logged into as the unprivileged service account.

Reuses the test fixtures' helpers (`tests/sshd.py`): real OpenSSH servers on 127.0.0.1 with
fresh keys. The login is `mailtrace-test` (shell /bin/sh), as a deployment's service account
would be: root's interactive shell set-up on some machines adds a constant to every remote
command that a service account does not pay. Without root (no account can be made) the
current user logs in instead, and the output says so.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.sshd import (
    KeyPair,
    Sshd,
    ensure_test_user,
    generate_key,
    start_sshd,
)


@dataclass
class Remote:
    """Running sshds, the key and known_hosts that reach them, and the login."""

    root: Path
    key: KeyPair
    known_hosts: Path
    sshds: list[Sshd]
    login: str

    def ensure_login(self) -> None:
        """Make the service account again if a finishing test run removed it meanwhile."""
        if self.login != getpass.getuser():
            ensure_test_user()

    def ssh(self, index: int = 0) -> list[str]:
        """The system ssh client with the same key and known_hosts, never prompting."""
        sshd = self.sshds[index]
        return [
            "ssh",
            "-p",
            str(sshd.port),
            "-i",
            str(self.key.private),
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            f"{self.login}@{sshd.host}",
        ]

    def server(self, name: str, index: int, logs: list[str], **fields: Any) -> dict[str, Any]:
        """A mailtrace server entry reaching sshd number `index`."""
        sshd = self.sshds[index]
        return {
            "name": name,
            "host": sshd.host,
            "port": sshd.port,
            "user": self.login,
            "keys": [str(self.key.private)],
            "use_agent": False,
            "known_hosts": str(self.known_hosts),
            "logs": logs,
            **fields,
        }

    def config(self, name: str, servers: list[dict[str, Any]], **extra: Any) -> Path:
        """Write a mailtrace configuration (JSON is YAML) and return its path."""
        path = self.root / f"{name}.yaml"
        path.write_text(json.dumps({"servers": servers, **extra}, indent=1))
        return path


@contextlib.contextmanager
def local_sshds(count: int) -> Iterator[Remote]:
    """Start `count` sshds on free loopback ports; stop them (by their own PIDs) on exit."""
    user, _created = ensure_test_user()  # kept: other runs on this machine share the account
    login = user or getpass.getuser()
    if user is None:
        print(f"(no service account could be made: logging in as {login})")
    root = Path(tempfile.mkdtemp(prefix="mailtrace-bench-sshd-"))
    root.chmod(0o755)  # the service account reads authorized_keys with its own rights
    sshds: list[Sshd] = []
    try:
        key = generate_key(root / "client")
        authorized = root / "authorized_keys"
        authorized.write_text(key.public_line + "\n")
        authorized.chmod(0o644)
        for i in range(count):
            sshds.append(start_sshd(f"mx{i + 1}", root / f"mx{i + 1}", authorized))
        known_hosts = root / "known_hosts"
        known_hosts.write_text("".join(s.known_hosts_line() + "\n" for s in sshds))
        yield Remote(root, key, known_hosts, sshds, login)
    finally:
        for sshd in sshds:
            sshd.stop()
        shutil.rmtree(root, ignore_errors=True)
