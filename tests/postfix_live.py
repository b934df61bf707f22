"""Real Postfix instances on 127.0.0.1 for end-to-end tests (root; Debian's postfix package).

Strategy: each instance gets its own config, queue and data directories under a temporary
folder, listens on a free loopback port, logs through Postfix's own postlogd to a file
(`maillog_file`), and never touches the system instance or port 25. Instance A relays the test
domain to instance B through `transport_maps`; B has one virtual mailbox and refuses every other
address at RCPT time. Tests send with smtplib and wait for the lines they expect.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import smtplib
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.sshd import free_port

POSTFIX = "/usr/sbin/postfix"
DOMAIN_B = "mx-b.test"
MAILBOX = f"live@{DOMAIN_B}"


@dataclass
class Instance:
    name: str
    host: str
    port: int
    root: Path

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def log_dir(self) -> Path:
        return self.root / "log"

    @property
    def log(self) -> Path:
        return self.log_dir / "mail.log"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def require_postfix() -> None:
    """Skip without Postfix or root; in CI (CI=true) that is a failure instead."""
    message = ""
    if not Path(POSTFIX).exists():
        message = "Postfix is not installed"
    elif os.geteuid() != 0:
        message = "starting Postfix instances needs root"
    if not message:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI must install postfix and run as root)", pytrace=False)
    pytest.skip(message)


def _write_instance(inst: Instance, extra: str, top: Path) -> None:
    for sub in ("etc", "spool", "lib", "log", "mail"):
        (inst.root / sub).mkdir(parents=True, exist_ok=True)
    nobody = pwd.getpwnam("nobody")
    shutil.chown(inst.root / "lib", "postfix")
    os.chown(inst.root / "mail", nobody.pw_uid, nobody.pw_gid)
    (inst.etc / "main.cf").write_text(
        f"""compatibility_level = 3.6
queue_directory = {inst.root}/spool
data_directory = {inst.root}/lib
syslog_name = postfix-{inst.name}
maillog_file = {inst.log}
maillog_file_prefixes = {top}
myhostname = {inst.host}
myorigin = $myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
biff = no
smtp_host_lookup = native
smtp_dns_support_level = disabled
virtual_mailbox_base = {inst.root}/mail
virtual_uid_maps = static:{nobody.pw_uid}
virtual_gid_maps = static:{nobody.pw_gid}
{extra}
"""
    )
    (inst.etc / "master.cf").write_text(
        f"""127.0.0.1:{inst.port} inet n - n - - smtpd
pickup     unix  n - n 60 1 pickup
cleanup    unix  n - n - 0 cleanup
qmgr       unix  n - n 300 1 qmgr
rewrite    unix  - - n - - trivial-rewrite
bounce     unix  - - n - 0 bounce
defer      unix  - - n - 0 bounce
trace      unix  - - n - 0 bounce
verify     unix  - - n - 1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n - - proxymap
smtp       unix  - - n - - smtp
relay      unix  - - n - - smtp
showq      unix  n - n - - showq
error      unix  - - n - - error
retry      unix  - - n - - error
discard    unix  - - n - - discard
local      unix  - n n - - local
virtual    unix  - n n - - virtual
anvil      unix  - - n - 1 anvil
scache     unix  - - n - 1 scache
postlog    unix-dgram n - n - 1 postlogd
"""
    )


def _postfix(inst: Instance, action: str) -> None:
    subprocess.run(
        [POSTFIX, "-c", str(inst.etc), action], check=True, capture_output=True, timeout=60
    )


def _wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), smtplib.SMTP("127.0.0.1", port, timeout=2) as smtp:
            smtp.noop()
            return
        time.sleep(0.2)
    raise TimeoutError(f"no SMTP server on 127.0.0.1:{port}")


@contextlib.contextmanager
def running_pair(transports: str = "", extra_a: str = "") -> Iterator[tuple[Instance, Instance]]:
    """Instance A (mx-a.test) relaying mx-b.test to instance B, both running. `transports` adds
    entries to A's transport map ("closed.test=smtp:[127.0.0.1]:PORT"), `extra_a` main.cf lines."""
    require_postfix()
    # Postfix's daemons run as the postfix user: pytest's private (0700) tmp dirs won't do.
    top = Path(tempfile.mkdtemp(prefix="mailtrace-postfix-"))
    top.chmod(0o755)
    a = Instance("a", "mx-a.test", free_port(), top / "a")
    b = Instance("b", DOMAIN_B, free_port(), top / "b")
    _write_instance(
        b,
        f"virtual_mailbox_domains = {DOMAIN_B}\n"
        f"virtual_mailbox_maps = inline:{{ {MAILBOX}={DOMAIN_B}/live/ }}",
        top,
    )
    _write_instance(
        a,
        f"transport_maps = inline:{{ {DOMAIN_B}=smtp:[127.0.0.1]:{b.port}"
        f"{', ' + transports if transports else ''} }}\n"
        "bounce_queue_lifetime = 0\n" + extra_a,
        top,
    )
    started: list[Instance] = []
    try:
        for inst in (b, a):
            _postfix(inst, "start")
            started.append(inst)
            _wait_port(inst.port)
        yield a, b
    finally:
        for inst in started:
            with contextlib.suppress(subprocess.SubprocessError):
                _postfix(inst, "stop")
        shutil.rmtree(top, ignore_errors=True)


def send(port: int, sender: str, recipients: list[str], subject: str) -> None:
    """One message through SMTP; refused recipients are fine (the log is what we test)."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, ", ".join(recipients), subject
    msg.set_content("mailtrace end-to-end test\n")
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.send_message(msg, from_addr=sender, to_addrs=recipients)


def wait_for(inst: Instance, *needles: str, timeout: float = 60.0) -> str:
    """Wait until the instance's log holds every needle; return the log text."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = inst.log_text()
        if all(n in text for n in needles):
            return text
        time.sleep(0.25)
    raise TimeoutError(
        f"{inst.name}: {needles} not logged within {timeout} s:\n{inst.log_text()[-3000:]}"
    )
