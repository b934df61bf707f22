"""Write a large, realistic Postfix log for benchmarks (not part of the test suite).

Each message has the usual five to seven lines (smtpd client, cleanup, qmgr from, a delivery per
recipient with mixed outcomes, qmgr removed) plus connection noise, spread over the given days,
in traditional syslog format. A few messages from `--needle` are sprinkled in so a search has
something to find, and every `--broad-every`th message comes from `--broad-domain` (a busy
domain for `@domain` questions). With `--deferred-needle` the needle's messages are still
deferred at the file's end (no final line). Deterministic for a given seed.

    python bench/generate_logs.py --size-mb 1024 --out /tmp/bench/mail.log
"""

from __future__ import annotations

import argparse
import os
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
OUTCOMES = [
    ("sent", "2.0.0", "250 2.0.0 Ok: queued as {nid}"),
    ("sent", "2.0.0", "250 2.0.0 OK  1715594412 a1si1234567wrp.107 - gsmtp"),
    (
        "deferred",
        "4.2.0",
        "host mx.example.org[198.51.100.7] said: 450 4.2.0 try later (in reply to RCPT TO command)",
    ),
    (
        "bounced",
        "5.1.1",
        "host mx.example.org[198.51.100.7] said: 550 5.1.1 <{rcpt}>: user unknown (in reply to RCPT TO command)",
    ),
]


def stamp(moment: datetime) -> str:
    return f"{MONTHS[moment.month - 1]} {moment.day:2d} {moment:%H:%M:%S}"


def qid(rng: random.Random) -> str:
    return f"{rng.getrandbits(40):010X}"


def message_lines(
    rng: random.Random, moment: datetime, sender: str, *, deferred: bool = False
) -> list[str]:
    q = qid(rng)
    host = "mx1"
    ip = f"203.0.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    rcpts = [
        f"user{rng.randrange(100000)}@example{rng.randrange(50)}.org"
        for _ in range(rng.choice((1, 1, 1, 2, 3)))
    ]
    t = moment
    out = [
        f"{stamp(t)} {host} postfix/smtpd[{rng.randrange(1000, 30000)}]: connect from client.example[{ip}]",
        f"{stamp(t)} {host} postfix/smtpd[{rng.randrange(1000, 30000)}]: {q}: client=client.example[{ip}]",
        f"{stamp(t)} {host} postfix/cleanup[{rng.randrange(1000, 30000)}]: {q}: message-id=<{rng.getrandbits(64):x}@example.net>",
        f"{stamp(t)} {host} postfix/qmgr[1090]: {q}: from=<{sender}>, size={rng.randrange(1000, 90000)}, nrcpt={len(rcpts)} (queue active)",
    ]
    for rcpt in rcpts:
        t += timedelta(milliseconds=rng.randrange(100, 3000))
        status, dsn, text = OUTCOMES[2] if deferred else rng.choice(OUTCOMES)
        text = text.format(nid=qid(rng), rcpt=rcpt)
        out.append(
            f"{stamp(t)} {host} postfix/smtp[{rng.randrange(1000, 30000)}]: {q}: to=<{rcpt}>, "
            f"relay=mx.example.org[198.51.100.7]:25, delay=1.2, delays=0.1/0/0.3/0.8, dsn={dsn}, "
            f"status={status} ({text})"
        )
    if not deferred:
        out.append(f"{stamp(t)} {host} postfix/qmgr[1090]: {q}: removed")
    out.append(
        f"{stamp(t)} {host} postfix/smtpd[{rng.randrange(1000, 30000)}]: disconnect from client.example[{ip}] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5"
    )
    return out


def generate(
    out: Path,
    size_mb: float,
    needle: str,
    start: datetime,
    days: int,
    seed: int,
    *,
    broad_domain: str = "broad.example.com",
    broad_every: int = 0,
    deferred_needle: bool = False,
) -> int:
    rng = random.Random(seed)
    target = int(size_mb * 1024 * 1024)
    written = 0
    span = timedelta(days=days).total_seconds()
    # estimate lines per message to spread time evenly
    per_message = 900
    total_messages = max(1, target // per_message)
    step = span / total_messages
    n = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="ascii") as handle:
        while written < target:
            moment = start + timedelta(seconds=n * step)
            is_needle = n % 50_000 == 7
            if is_needle:
                sender = needle
            elif broad_every and n % broad_every == 3:
                sender = f"user{rng.randrange(20000)}@{broad_domain}"
            else:
                sender = f"sender{rng.randrange(200000)}@example.net"
            lines = message_lines(rng, moment, sender, deferred=is_needle and deferred_needle)
            chunk = "\n".join(lines) + "\n"
            handle.write(chunk)
            written += len(chunk)
            n += 1
    end = start + timedelta(days=days)
    os.utime(out, (end.timestamp(), end.timestamp()))
    return n


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--size-mb", type=float, default=1024)
    parser.add_argument("--needle", default="needle@example.net")
    parser.add_argument("--start", default="2024-05-06")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--broad-domain", default="broad.example.com")
    parser.add_argument("--broad-every", type=int, default=0, help="0: no broad domain")
    parser.add_argument("--deferred-needle", action="store_true")
    args = parser.parse_args()
    start = datetime.fromisoformat(args.start).replace(tzinfo=UTC)
    count = generate(
        args.out,
        args.size_mb,
        args.needle,
        start,
        args.days,
        args.seed,
        broad_domain=args.broad_domain,
        broad_every=args.broad_every,
        deferred_needle=args.deferred_needle,
    )
    print(f"wrote {args.out}: {args.out.stat().st_size / 1e6:.0f} MB, {count} messages")


if __name__ == "__main__":
    main()
