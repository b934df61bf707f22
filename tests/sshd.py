"""Real OpenSSH servers on 127.0.0.1 for the SSH tests, with generated keys and synthetic logs.

Strategy: each `Sshd` is an unprivileged-looking but real `sshd -D -e -f CONFIG` process with its
own host key, listening on a free loopback port (sshd has no "port 0", so a port is found by
binding and releasing a socket, and the start is retried if another process took it meanwhile).
One client key is authorized for every server; a second key is not. A known_hosts file lists each
server as `[127.0.0.1]:PORT`. A server can run a ForceCommand recorder that saves
`$SSH_ORIGINAL_COMMAND` byte for byte and then runs it exactly as sshd would have, so tests can
compare the command that arrived with the one that was sent.

Everything lives in one world-readable temporary directory (not pytest's private tmp dir) so that
an unprivileged test user can log in too: sshd reads authorized_keys with the user's rights.
"""

from __future__ import annotations

import contextlib
import getpass
import gzip
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.settings import Limits, ServerConfig, Settings

SSHD = Path("/usr/sbin/sshd")
SSH_KEYGEN = "ssh-keygen"
PRIVSEP_DIR = Path("/run/sshd")  # sshd refuses to start without its privilege separation dir
TEST_USER = "mailtrace-test"
HOST = "127.0.0.1"

RECORDER = """#!/bin/sh
# Save the command exactly as it arrived, then run it the way sshd runs commands.
f="{record_dir}/$(date +%s%N)-$$"
printf '%s' "$SSH_ORIGINAL_COMMAND" > "$f.tmp" && mv "$f.tmp" "$f.cmd"
exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"
"""


def require_sshd() -> None:
    """Skip when OpenSSH's sshd cannot run here; in CI (CI=true) that is a failure instead."""
    missing = [str(p) for p in (SSHD,) if not p.exists()]
    if shutil.which(SSH_KEYGEN) is None:
        missing.append(SSH_KEYGEN)
    message = ""
    if missing:
        message = f"OpenSSH server not installed ({', '.join(missing)} missing)"
    else:
        try:
            PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
        except OSError as exc:
            message = f"sshd needs {PRIVSEP_DIR}, which cannot be created: {exc.strerror}"
    if not message:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI must install openssh-server and run as root)", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    """A loopback port nobody listens on right now (it may be taken again before sshd binds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class KeyPair:
    private: Path
    public_line: str  # "ssh-ed25519 AAAA... comment"


def generate_key(path: Path, passphrase: str = "") -> KeyPair:
    """A fresh ed25519 key pair at `path` and `path.pub`."""
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", passphrase, "-C", path.name, "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return KeyPair(path, path.with_suffix(".pub").read_text().strip())


@dataclass
class Sshd:
    """One running sshd. `log` is its own log file (-E); `record_dir` holds recorded commands."""

    name: str
    port: int
    directory: Path
    host_key: KeyPair
    log: Path
    record_dir: Path | None
    process: subprocess.Popen[bytes]

    @property
    def host(self) -> str:
        return HOST

    def known_hosts_line(self, key: KeyPair | None = None) -> str:
        key_type, blob = (key or self.host_key).public_line.split()[:2]
        return f"[{HOST}]:{self.port} {key_type} {blob}"

    def recorded(self) -> list[str]:
        """Every command that arrived through the recorder, oldest first."""
        if self.record_dir is None:
            raise AssertionError(f"{self.name} was started without the command recorder")
        files = sorted(self.record_dir.glob("*.cmd"), key=lambda p: int(p.stem.split("-")[0]))
        return [p.read_bytes().decode("utf-8") for p in files]

    def accepted_logins(self) -> int:
        """How many logins sshd has accepted so far (one per SSH connection)."""
        return self.log.read_text(errors="replace").count("Accepted publickey")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # only this sshd, by its own PID
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_sshd(
    name: str,
    directory: Path,
    authorized_keys: Path,
    *,
    record: bool = False,
    log_level: str = "VERBOSE",
    extra_config: str = "",
    max_sessions: int = 10,
) -> Sshd:
    """Start one sshd in `directory` on a free loopback port and wait until it accepts."""
    directory.mkdir(parents=True, exist_ok=True)
    host_key = generate_key(directory / "ssh_host_ed25519_key")
    record_dir: Path | None = None
    force = ""
    if record:
        record_dir = directory / "recorded"
        record_dir.mkdir()
        record_dir.chmod(0o1777)  # an unprivileged test user records too
        script = directory / "recorder.sh"
        script.write_text(RECORDER.format(record_dir=record_dir))
        script.chmod(0o755)
        force = f"ForceCommand {script}\n"
    log = directory / "sshd.log"
    last_error = ""
    for _attempt in range(8):
        port = free_port()
        config = directory / "sshd_config"
        config.write_text(
            f"ListenAddress {HOST}\n"
            f"Port {port}\n"
            f"HostKey {host_key.private}\n"
            f"PidFile {directory / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {authorized_keys}\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "PubkeyAuthentication yes\n"
            "PermitRootLogin prohibit-password\n"
            "StrictModes no\n"
            "UsePAM no\n"
            "AllowTcpForwarding yes\n"
            f"MaxSessions {max_sessions}\n"
            "MaxStartups 100\n"
            "PrintMotd no\n"
            f"LogLevel {log_level}\n" + force + extra_config
        )
        log.write_text("")
        process = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(config), "-E", str(log)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        server = Sshd(name, port, directory, host_key, log, record_dir, process)
        if _wait_listening(server):
            return server
        server.stop()
        last_error = log.read_text(errors="replace")
    raise RuntimeError(f"sshd {name} did not start:\n{last_error}")


def _wait_listening(server: Sshd, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False  # e.g. "Address already in use": the caller retries on another port
        if "Server listening on" in server.log.read_text(errors="replace"):
            with contextlib.suppress(OSError), socket.create_connection((HOST, server.port), 1):
                return True
        time.sleep(0.02)
    return False


# --- synthetic but realistic Postfix logs -------------------------------------------------


def postfix_lines(host: str, day_start: datetime, count: int, seed: int) -> list[str]:
    """`count` delivered messages on `host` from `day_start` on, six syslog lines each."""
    lines = []
    for i in range(count):
        n = seed * 1000 + i
        ts = day_start + timedelta(minutes=37 * i % 1380, seconds=i % 60)
        qid = f"{0x4A1B2C3D00 + n * 7919:X}"[-10:]
        pid = 2000 + n % 5000
        client = f"client{n % 7}.example.net[192.0.2.{n % 250 + 1}]"
        sender = f"sender{n % 11}@example.net"
        rcpt = f"rcpt{n % 13}@example.org"
        stamp = _syslog_time
        lines += [
            f"{stamp(ts)} {host} postfix/smtpd[{pid}]: connect from {client}",
            f"{stamp(ts)} {host} postfix/smtpd[{pid}]: {qid}: client={client}",
            f"{stamp(ts)} {host} postfix/cleanup[{pid + 1}]: {qid}: "
            f"message-id=<{n}.{seed}@example.net>",
            f"{stamp(ts)} {host} postfix/qmgr[900]: {qid}: from=<{sender}>, size={1500 + n}, "
            "nrcpt=1 (queue active)",
            f"{stamp(ts + timedelta(seconds=1))} {host} postfix/smtp[{pid + 2}]: {qid}: "
            f"to=<{rcpt}>, relay=mx.example.org[198.51.100.25]:25, delay=1.2, "
            "delays=0.1/0/0.5/0.6, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4XyZ)",
            f"{stamp(ts + timedelta(seconds=1))} {host} postfix/qmgr[900]: {qid}: removed",
        ]
    return lines


def _syslog_time(ts: datetime) -> str:
    return f"{ts:%b} {ts.day:2d} {ts:%H:%M:%S}"


def write_rotated_logs(directory: Path, host: str, days: int = 4, per_day: int = 25) -> list[Path]:
    """mail.log, mail.log.1, mail.log.2.gz … one day each, mtimes at each file's last line."""
    directory.mkdir(parents=True, exist_ok=True)
    # The newest file ends yesterday, so every line and mtime lies in the past.
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    written = []
    for age in range(days):
        lines = postfix_lines(host, today - timedelta(days=age), per_day, seed=age + 1)
        lines.sort(key=lambda line: line[:15])
        data = ("\n".join(lines) + "\n").encode()
        if age == 0:
            path = directory / "mail.log"
        elif age == 1:
            path = directory / "mail.log.1"
        else:
            path = directory / f"mail.log.{age}.gz"
        if path.suffix == ".gz":
            path.write_bytes(gzip.compress(data, mtime=0))
        else:
            path.write_bytes(data)
        end = (today - timedelta(days=age) + timedelta(hours=23, minutes=59)).timestamp()
        os.utime(path, (end, end))
        written.append(path)
    return written


# --- the cluster: mx1, mx2 and a bastion ----------------------------------------------------


@dataclass
class SshCluster:
    """Three running sshds, the keys to reach them and log directories to search."""

    root: Path
    client_key: KeyPair  # authorized everywhere
    stranger_key: KeyPair  # authorized nowhere
    known_hosts: Path
    servers: dict[str, Sshd]
    logs: dict[str, Path]  # log directory of each mx
    test_user: str | None  # an unprivileged login, when the tests may create one
    login: str = field(default_factory=getpass.getuser)  # who the tests log in as

    def __getitem__(self, name: str) -> Sshd:
        return self.servers[name]

    def server_config(self, name: str, *, server: str | None = None, **fields: Any) -> ServerConfig:
        """A ServerConfig named `name` reaching the sshd `server` (default: the same name)."""
        sshd = self.servers[server or name]
        values: dict[str, Any] = {
            "name": name,
            "host": sshd.host,
            "port": sshd.port,
            "user": self.login,
            "keys": (str(self.client_key.private),),
            "use_agent": False,
            "known_hosts": str(self.known_hosts),
            "logs": (str(self.logs.get(server or name, self.root / "nowhere")) + "/mail.log*",),
        }
        values.update(fields)
        return ServerConfig(**values)

    def settings(self, *servers: ServerConfig, **limits: Any) -> Settings:
        base = {"connect_timeout": 5, "command_timeout": 20}
        return Settings(servers=servers, limits=Limits(**{**base, **limits}))

    def write_known_hosts(self, path: Path, lines: list[str]) -> Path:
        path.write_text("".join(line + "\n" for line in lines))
        return path


def ensure_test_user() -> tuple[str | None, bool]:
    """An unprivileged login for permission tests: (name, created_here); (None, False) if none."""
    try:
        pwd.getpwnam(TEST_USER)
        return TEST_USER, False
    except KeyError:
        pass
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        return None, False
    # "*" instead of useradd's locked "!": sshd without PAM refuses locked accounts.
    done = subprocess.run(
        ["useradd", "--system", "-M", "-d", "/", "-s", "/bin/sh", "-p", "*", TEST_USER],
        capture_output=True,
        check=False,
    )
    return (TEST_USER, True) if done.returncode == 0 else (None, False)


def remove_test_user() -> None:
    """userdel refuses while the user's last sessions are still ending: try for a few seconds."""
    for _attempt in range(50):
        done = subprocess.run(["userdel", TEST_USER], capture_output=True, check=False)
        if done.returncode == 0:
            return
        time.sleep(0.1)


@contextlib.contextmanager
def running_cluster() -> Iterator[SshCluster]:
    """Start mx1 (with the command recorder), mx2 and a bastion; stop them all afterwards."""
    require_sshd()
    root = Path(tempfile.mkdtemp(prefix="mailtrace-sshd-"))
    root.chmod(0o755)  # the unprivileged test user must reach authorized_keys and the logs
    servers: dict[str, Sshd] = {}
    user, created = ensure_test_user()
    try:
        keys = root / "keys"
        keys.mkdir()
        client = generate_key(keys / "client")
        stranger = generate_key(keys / "stranger")
        authorized = root / "authorized_keys"
        authorized.write_text(client.public_line + "\n")
        authorized.chmod(0o644)
        logs = {name: root / "logs" / name for name in ("mx1", "mx2")}
        for name, directory in logs.items():
            write_rotated_logs(directory, name)
        (root / "logs").chmod(0o755)
        servers["mx1"] = start_sshd("mx1", root / "mx1", authorized, record=True)
        servers["mx2"] = start_sshd("mx2", root / "mx2", authorized)
        # DEBUG1 makes the bastion log every forwarded connection, so tests can see the jump.
        servers["bastion"] = start_sshd("bastion", root / "bastion", authorized, log_level="DEBUG1")
        known_hosts = root / "known_hosts"
        known_hosts.write_text("".join(s.known_hosts_line() + "\n" for s in servers.values()))
        yield SshCluster(root, client, stranger, known_hosts, servers, logs, user)
    finally:
        for server in servers.values():
            server.stop()
        if created:
            remove_test_user()
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def limited_sshds(
    prefix: str, max_sessions: int, hosts: tuple[str, ...] = ("mx1", "mx2"), **fields: Any
) -> Iterator[tuple[tuple[ServerConfig, ...], dict[str, Sshd]]]:
    """sshds allowing `max_sessions` sessions per connection (logging at DEBUG1, so a refused
    session shows as "no more sessions"), each with four days of rotated logs, and a server
    entry for each (`fields` added to every entry). Stopped on exit."""
    require_sshd()
    with tempfile.TemporaryDirectory(prefix=prefix) as name:
        root = Path(name)
        client = generate_key(root / "client")
        authorized = root / "authorized_keys"
        authorized.write_text(client.public_line + "\n")
        servers = {
            host: start_sshd(
                host, root / host, authorized, log_level="DEBUG1", max_sessions=max_sessions
            )
            for host in hosts
        }
        try:
            known_hosts = root / "known_hosts"
            known_hosts.write_text("".join(s.known_hosts_line() + "\n" for s in servers.values()))
            configs = []
            for host, sshd in servers.items():
                write_rotated_logs(root / "logs" / host, host)
                configs.append(
                    ServerConfig(
                        name=host,
                        host=sshd.host,
                        port=sshd.port,
                        keys=(str(client.private),),
                        use_agent=False,
                        known_hosts=str(known_hosts),
                        logs=(str(root / "logs" / host) + "/mail.log*",),
                        **fields,
                    )
                )
            yield tuple(configs), servers
        finally:
            for sshd in servers.values():
                sshd.stop()
