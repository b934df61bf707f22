#!/usr/bin/env python3
"""Capture Postfix logs of content filters, milters, postscreen and a DST fall-back.

Strategy: start throwaway Postfix instances (own config, queue and data directories, 127.0.0.1
only, free ports, logging with Postfix's own postlogd to `maillog_file`), and beside them small
SMTP and milter servers written here that answer by rule. Everything Postfix logs is real: it
talks to real sockets. Nothing in the saved logs is edited. Run as root (Debian's postfix):

    python3 scripts/capture_filter_logs.py            # writes tests/fixtures/postfix/filters/
                                                     # and tests/fixtures/postfix/dst-*/

Capture `filters/mail.log` (instance gw.test), one mail per scenario (the recipient picks it):
  front smtpd --smtpd_proxy_filter--> PROXY --> back smtpd --content_filter--> AFTER-QUEUE FILTER
      PROXY: door-reject@ -> 554 5.7.1 Rejected for policy reasons; others passed to the back
      smtpd, whose reply ("250 2.0.0 Ok: queued as X") it returns
      FILTER: pass@ re-injected on the re-injection smtpd (amavisd-new's reply shape),
      blocked@ -> 250 2.7.0 BLOCKED, discard@ -> 250 2.7.0 Ok, discarded, spam,
      refuse@ -> 554 5.7.0 Reject, id=... - spam
  milter smtpd --smtpd_milters--> MILTER (milter protocol v6, written here):
      helo "reject-helo" / sender milter-mail@ / recipient milter-rcpt@ are rejected at their
      stage; milter-eom@ rejected, milter-discard@ discarded, milter-hold@ held at end of data
  postscreen: a client that talks before the greeting (PREGREET), refused at RCPT
Captures `dst-one-file/mail.log` and `dst-rotated/mail.log(.1)`: an instance under libfaketime
with TZ=Europe/Berlin crossing 2026-10-25 03:00 CEST -> 02:00 CET; in dst-rotated the log is
rotated (stop, rename, start) just before the clock steps back.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import smtplib
import socket
import socketserver
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

POSTFIX = "/usr/sbin/postfix"
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "postfix"
DEST = "dest.test"  # the virtual mailbox domain every instance delivers to


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------------------
# A tiny SMTP server: enough of RFC 5321 for Postfix's smtp client and smtpd proxy client.

Verdict = Callable[[str, list[str], bytes], tuple[int, str]]


def smtp_server(name: str, verdict: Verdict) -> socketserver.ThreadingTCPServer:
    """An SMTP server on a free loopback port; `verdict(sender, rcpts, data)` gives the reply
    to the end of DATA."""

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            def say(line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")

            sender, rcpts = "", []
            say(f"220 {name} ESMTP test filter")
            while line := self.rfile.readline():
                cmd = line.decode(errors="replace").strip()
                verb = cmd.split(" ", 1)[0].upper()
                if verb in ("EHLO", "LHLO"):
                    say(f"250-{name}")
                    say("250 8BITMIME")
                elif verb == "HELO":
                    say(f"250 {name}")
                elif verb == "MAIL":
                    sender, rcpts = cmd.split(":", 1)[1].split()[0].strip("<>"), []
                    say("250 2.1.0 Ok")
                elif verb == "RCPT":
                    rcpts.append(cmd.split(":", 1)[1].split()[0].strip("<>"))
                    say("250 2.1.5 Ok")
                elif verb == "DATA":
                    say("354 End data with <CR><LF>.<CR><LF>")
                    data = b""
                    while (chunk := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
                        data += chunk
                    code, text = verdict(sender, rcpts, data)
                    say(f"{code} {text}")
                elif verb == "QUIT":
                    say("221 2.0.0 Bye")
                    return
                else:  # RSET, NOOP, XFORWARD, ...
                    say("250 2.0.0 Ok")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def relay_to(port: int, sender: str, rcpts: list[str], data: bytes) -> tuple[int, str]:
    """Hand a message to an smtpd on loopback; its reply to the end of DATA."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.ehlo("filter.test")
        smtp.mail(sender)
        for rcpt in rcpts:
            smtp.rcpt(rcpt)
        code, text = smtp.data(data)
    return code, text.decode(errors="replace")


# ------------------------------------------------------------------------------------------
# A tiny milter (Sendmail milter protocol version 6, as Postfix speaks it).

_CONTINUE, _REPLY, _DISCARD, _QUARANTINE = b"c", b"y", b"d", b"q"


def milter_server() -> socketserver.ThreadingTCPServer:
    """A milter on a free loopback port that rejects, discards or holds by rule."""

    class Handler(socketserver.BaseRequestHandler):
        def packet(self) -> tuple[bytes, bytes] | None:
            head = self._read(4)
            if head is None:
                return None
            body = self._read(struct.unpack("!I", head)[0])
            return (body[:1], body[1:]) if body else None

        def _read(self, n: int) -> bytes | None:
            data = b""
            while len(data) < n:
                chunk = self.request.recv(n - len(data))
                if not chunk:
                    return None
                data += chunk
            return data

        def send(self, cmd: bytes, data: bytes = b"") -> None:
            self.request.sendall(struct.pack("!I", len(data) + 1) + cmd + data)

        def reply(self, text: str) -> None:
            self.send(_REPLY, text.encode() + b"\0")

        def handle(self) -> None:
            rcpts: list[str] = []
            while (got := self.packet()) is not None:
                cmd, data = got
                arg = data.split(b"\0", 1)[0].decode(errors="replace").strip("<>")
                if cmd == b"O":  # option negotiation: version 6, may quarantine, every step
                    self.send(b"O", struct.pack("!III", 6, 0x20, 0))
                elif cmd in (b"D", b"A"):  # macros, abort: no reply
                    if cmd == b"A":
                        rcpts = []
                elif cmd in (b"Q", b"K"):  # quit (K: quit, new connection follows)
                    if cmd == b"Q":
                        return
                elif cmd == b"H" and arg == "reject-helo":
                    self.reply("550 5.7.1 HELO reject-helo refused by test milter")
                elif cmd == b"M" and arg.startswith("milter-mail@"):
                    self.reply("550 5.7.1 Sender refused by test milter")
                elif cmd == b"R":
                    if arg.startswith("milter-rcpt@"):
                        self.reply("550 5.7.1 Recipient refused by test milter")
                    else:
                        rcpts.append(arg)
                        self.send(_CONTINUE)
                elif cmd == b"E":  # end of message: the verdicts that need the whole mail
                    if any(r.startswith("milter-eom@") for r in rcpts):
                        self.reply("554 5.7.1 Message content refused by test milter")
                    elif any(r.startswith("milter-discard@") for r in rcpts):
                        self.send(_DISCARD)
                    elif any(r.startswith("milter-hold@") for r in rcpts):
                        self.send(_QUARANTINE, b"held by test milter\0")
                        self.send(_CONTINUE)
                    else:
                        self.send(_CONTINUE)
                    rcpts = []
                else:
                    self.send(_CONTINUE)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# ------------------------------------------------------------------------------------------
# Postfix instances


class Instance:
    def __init__(self, top: Path, name: str, host: str, env: dict[str, str] | None = None):
        self.root, self.host, self.env = top / name, host, env
        self.port = free_port()
        self.log = self.root / "log" / "mail.log"
        for sub in ("etc", "spool", "lib", "log", "mail"):
            (self.root / sub).mkdir(parents=True)
        shutil.chown(self.root / "lib", "postfix")
        nobody = pwd.getpwnam("nobody")
        os.chown(self.root / "mail", nobody.pw_uid, nobody.pw_gid)
        imported = ""
        if env:
            default = subprocess.run(
                ["postconf", "-d", "-h", "import_environment"], capture_output=True, text=True
            ).stdout.strip()
            imported = f"import_environment = {default} " + " ".join(
                f"{k}={v}" for k, v in env.items() if k != "TZ"
            )
        self.main = f"""compatibility_level = 3.6
queue_directory = {self.root}/spool
data_directory = {self.root}/lib
syslog_name = postfix
maillog_file = {self.log}
maillog_file_prefixes = {top}
myhostname = {host}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
biff = no
smtp_host_lookup = native
smtp_dns_support_level = disabled
virtual_mailbox_domains = {DEST}
virtual_mailbox_maps = static:{DEST}/box/
virtual_mailbox_base = {self.root}/mail
virtual_uid_maps = static:{nobody.pw_uid}
virtual_gid_maps = static:{nobody.pw_gid}
{imported}
"""
        self.master = f"""127.0.0.1:{self.port} inet n - n - - smtpd
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

    def postfix(self, action: str) -> None:
        env = {**os.environ, **(self.env or {})}
        subprocess.run(
            [POSTFIX, "-c", str(self.root / "etc"), action],
            check=True,
            capture_output=True,
            timeout=60,
            env=env,
        )

    def start(self) -> None:
        (self.root / "etc" / "main.cf").write_text(self.main)
        (self.root / "etc" / "master.cf").write_text(self.master)
        self.postfix("start")
        wait_port(self.port)

    def wait_for(self, *needles: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace") if self.log.exists() else ""
            if all(n in text for n in needles):
                return
            time.sleep(0.25)
        raise TimeoutError(f"{needles} not logged:\n{text[-3000:]}")


def wait_port(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 2):
            return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on {port}")


def send(port: int, sender: str, rcpts: list[str], helo: str = "client.test") -> str:
    """One mail; the server's refusal is a result, not an error. Returns what happened."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, ", ".join(rcpts), "filter capture"
    msg["Message-ID"] = f"<{rcpts[0].split('@')[0]}.{time.time_ns()}@client.test>"
    msg.set_content("mailtrace filter capture\n")
    try:
        with smtplib.SMTP("127.0.0.1", port, local_hostname=helo, timeout=30) as smtp:
            refused = smtp.send_message(msg, from_addr=sender, to_addrs=rcpts)
        return f"accepted (refused: {refused})" if refused else "accepted"
    except smtplib.SMTPException as exc:
        return f"refused: {exc}"


def pregreet(port: int, sender: str, rcpt: str) -> None:
    """Talk before the greeting, like a spambot; postscreen logs PREGREET and refuses."""
    with socket.create_connection(("127.0.0.1", port), 30) as sock:
        sock.sendall(b"EHLO spambot.test\r\n")
        time.sleep(4)
        for line in (f"MAIL FROM:<{sender}>", f"RCPT TO:<{rcpt}>", "QUIT"):
            sock.sendall(line.encode() + b"\r\n")
            time.sleep(0.5)
        with contextlib.suppress(OSError):
            sock.recv(65536)


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    top = Path(tempfile.mkdtemp(prefix="mailtrace-capture-"))
    top.chmod(0o755)
    started: list[Instance] = []
    try:
        yield top
    finally:
        for inst_dir in top.iterdir():
            with contextlib.suppress(subprocess.SubprocessError):
                subprocess.run(
                    [POSTFIX, "-c", str(inst_dir / "etc"), "stop"], capture_output=True, timeout=60
                )
        del started
        shutil.rmtree(top, ignore_errors=True)


# ------------------------------------------------------------------------------------------
# Captures


def capture_filters(top: Path) -> None:
    gw = Instance(top, "gw", "gw.test")
    back, reinject, screen, milt = free_port(), free_port(), free_port(), free_port()

    def after_queue(sender: str, rcpts: list[str], data: bytes) -> tuple[int, str]:
        who = rcpts[0].split("@")[0]
        if who == "blocked":
            return 250, "2.7.0 BLOCKED (quarantined: virus Eicar-Test-Signature)"
        if who == "discard":
            return 250, "2.7.0 Ok, discarded, id=04211-02 - spam"
        if who == "refuse":
            return 554, "5.7.0 Reject, id=04211-03 - spam"
        code, text = relay_to(reinject, sender, rcpts, data)
        return code, f"2.0.0 from MTA(smtp:[127.0.0.1]:{reinject}): {code} {text}"

    def proxy(sender: str, rcpts: list[str], data: bytes) -> tuple[int, str]:
        if any(r.startswith("door-reject@") for r in rcpts):
            return 554, "5.7.1 Rejected for policy reasons (test proxy)"
        return relay_to(back, sender, rcpts, data)

    filt = smtp_server("filter.test", after_queue)
    prox = smtp_server("proxy.test", proxy)
    milter = milter_server()
    fport, pport, mport = (s.server_address[1] for s in (filt, prox, milter))
    gw.main += f"""content_filter = smtp:[127.0.0.1]:{fport}
postscreen_access_list =
postscreen_greet_action = enforce
postscreen_greet_wait = 2s
postscreen_dnsbl_sites =
"""
    gw.master = gw.master.replace(
        f"127.0.0.1:{gw.port} inet n - n - - smtpd\n",
        f"""127.0.0.1:{gw.port} inet n - n - - smtpd
  -o smtpd_proxy_filter=127.0.0.1:{pport} -o content_filter=
127.0.0.1:{back} inet n - n - - smtpd
127.0.0.1:{reinject} inet n - n - - smtpd -o content_filter= -o smtpd_milters=
127.0.0.1:{milt} inet n - n - - smtpd -o content_filter= -o smtpd_milters=inet:127.0.0.1:{mport}
127.0.0.1:{screen} inet n - n - 1 postscreen -o content_filter=
smtpd      pass  - - n - - smtpd -o content_filter=
dnsblog    unix  - - n - 0 dnsblog
tlsproxy   unix  - - n - 0 tlsproxy
""",
    )
    gw.start()
    for port in (back, reinject, milt, screen):
        wait_port(port)
    sender = "alice@client.test"
    for who in ("pass", "blocked", "discard", "refuse", "door-reject"):
        print(who, send(gw.port, sender, [f"{who}@{DEST}"]))
    print("reject-helo", send(milt, sender, [f"ok@{DEST}"], helo="reject-helo"))
    print("milter-mail", send(milt, f"milter-mail@{DEST}", [f"ok@{DEST}"]))
    for who in ("milter-rcpt", "milter-eom", "milter-discard", "milter-hold"):
        print(who, send(milt, sender, [f"{who}@{DEST}", f"ok@{DEST}"]))
    pregreet(screen, "bot@spam.test", f"ok@{DEST}")
    gw.wait_for("blocked@", "refuse@", "pass@", "status=sent (delivered to maildir)", "PREGREET")
    time.sleep(3)  # let the last removed/disconnect lines land
    gw.postfix("stop")
    save(gw.log, OUT / "filters" / "mail.log")


DST_ZONE = "Europe/Berlin"
DST_START = datetime(2026, 10, 25, 2, 59, 35, tzinfo=ZoneInfo(DST_ZONE))  # CEST, before


def capture_dst(top: Path, name: str, rotate: bool) -> None:
    """Mail at 02:59 CEST, then (rotating first if asked) mail at 02:00 and 02:00+ CET."""
    offset = int(DST_START.timestamp() - time.time())
    env = {
        "LD_PRELOAD": FAKETIME_LIB,
        "FAKETIME": f"{offset:+d}",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "TZ": DST_ZONE,
    }
    inst = Instance(top, name, f"{name}.test", env)
    inst.start()
    print(name, send(inst.port, "dst@client.test", [f"before@{DEST}"]))
    inst.wait_for(f"to=<before@{DEST}>", ": removed")
    if rotate:
        inst.postfix("stop")
        inst.log.rename(inst.log.with_name("mail.log.1"))
    # The fake clock crosses 03:00 CEST, which is 02:00 CET again.
    time.sleep(max(0.0, DST_START.timestamp() + 40 - (time.time() + offset)))
    if rotate:
        inst.start()
    for who in ("after", "later"):
        print(name, send(inst.port, "dst@client.test", [f"{who}@{DEST}"]))
        inst.wait_for(f"to=<{who}@{DEST}>")
        time.sleep(2)
    time.sleep(2)
    inst.postfix("stop")
    for log in sorted(inst.log.parent.glob("mail.log*")):
        save(log, OUT / name / log.name)


def save(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    print(f"saved {dest} ({len(dest.read_text().splitlines())} lines)")


def main() -> int:
    if os.geteuid() != 0 or not Path(POSTFIX).exists():
        print("needs root and Debian's postfix package", file=sys.stderr)
        return 2
    with workdir() as top:
        capture_filters(top)
        threads = [
            threading.Thread(target=capture_dst, args=(top, "dst-one-file", False)),
            threading.Thread(target=capture_dst, args=(top, "dst-rotated", True)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
