#!/usr/bin/env python3
"""Capture Postfix logs of SMTP sessions that end without a queued mail.

Strategy: one throwaway Postfix instance (the same set-up as `capture_filter_logs.py`: own
config, queue and data directories, 127.0.0.1 only, a free port, Postfix's own postlogd writing
`maillog_file`) with STARTTLS offered and a low error limit. A client bound to its own loopback
address, 127.0.0.5, then talks to it the way broken or hostile senders do, over a raw socket;
a well-behaved client on 127.0.0.1 sends one ordinary mail beside them. Everything in the saved
log is what Postfix wrote; nothing is edited. Run as root (Debian's postfix):

    python3 scripts/capture_session_logs.py      # writes tests/fixtures/postfix/sessions/

The sessions from 127.0.0.5 (none of them queues a mail):
  dropped  HELO with `MAIL FROM:<x@example.net>` sent in the same packet (improper pipelining:
           Postfix logs the early command), then the client drops the connection
  errors   EHLO, then RCPT commands without MAIL until "too many errors"
  tls      EHLO, STARTTLS, then plain text instead of a TLS handshake
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from capture_filter_logs import DEST, OUT, POSTFIX, Instance, save, send, workdir

CLIENT = "127.0.0.5"  # the misbehaving client, apart from the well-behaved 127.0.0.1
SENDER = "x@example.net"  # named only in the dropped session's early command


class Session:
    """A raw SMTP conversation from CLIENT: send lines, read the replies as they come."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), 30, source_address=(CLIENT, 0))
        self.read()  # the greeting

    def read(self) -> str:
        """Read until a reply's last line ("250 ..." rather than "250-...")."""
        data = b""
        while not data or not _complete(data):
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data.decode(errors="replace")

    def say(self, *lines: str) -> str:
        self.sock.sendall("".join(line + "\r\n" for line in lines).encode())
        return self.read()

    def drop(self) -> None:
        self.sock.close()


def _complete(data: bytes) -> bool:
    last = data.rstrip(b"\r\n").rsplit(b"\n", 1)[-1]
    return data.endswith(b"\n") and len(last) >= 4 and last[3:4] == b" "


def self_signed(directory: Path) -> tuple[Path, Path]:
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-subj", "/CN=mx-s.test", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return key, cert


def capture_sessions(top: Path) -> None:
    inst = Instance(top, "sessions", "mx-s.test")
    key, cert = self_signed(inst.root / "etc")
    inst.main += f"""smtpd_tls_security_level = may
smtpd_tls_cert_file = {cert}
smtpd_tls_key_file = {key}
smtpd_peername_lookup = no
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 2
smtpd_hard_error_limit = 3
"""
    inst.master += "tlsmgr     unix  - - n 1000? 1 tlsmgr\n"
    inst.start()
    print("ordinary", send(inst.port, "ok@example.org", [f"box@{DEST}"]))

    dropped = Session(inst.port)
    print("dropped", dropped.say("HELO client.example.net", f"MAIL FROM:<{SENDER}>").strip())
    time.sleep(0.5)
    dropped.drop()
    inst.wait_for("lost connection after")

    errors = Session(inst.port)
    errors.say("EHLO client.example.net")
    with contextlib.suppress(OSError):
        for _ in range(4):
            print("errors", errors.say(f"RCPT TO:<box@{DEST}>").strip())
    errors.drop()
    inst.wait_for("too many errors after")

    tls = Session(inst.port)
    tls.say("EHLO client.example.net")
    print("tls", tls.say("STARTTLS").strip())
    with contextlib.suppress(OSError):
        tls.say("MAIL FROM:<plain@client.example.net>")  # text where a ClientHello belongs
    tls.drop()
    inst.wait_for("SSL_accept error", f"to=<box@{DEST}>", ": removed")
    time.sleep(2)  # the last disconnect lines
    inst.postfix("stop")
    save(inst.log, OUT / "sessions" / "mail.log")


def main() -> int:
    if os.geteuid() != 0 or not Path(POSTFIX).exists():
        print("needs root and Debian's postfix package", file=sys.stderr)
        return 2
    with workdir() as top:
        capture_sessions(top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
