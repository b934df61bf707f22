"""CI smoke check of the image (run by .ci/docker-smoke, not by pytest): `serve` in HTTP mode
in the container against the fake Slack on the host's loopback, healthy, a signed command
answered in a thread, then `docker stop` within 10 s."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from tests.fakeslack import FakeSlack, signed_slash_command_request
from tests.sshd import free_port

IMAGE = "mailtrace:ci"
NAME = "mailtrace-smoke"
BOT_TOKEN = "xoxb-docker-smoke"
SECRET = "docker-smoke-signing-secret"
ROOT = Path(__file__).resolve().parent.parent


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True).stdout


async def main() -> int:
    async with FakeSlack(valid_tokens=[BOT_TOKEN]) as fake:
        port = free_port()
        with tempfile.TemporaryDirectory() as name:
            etc = Path(name)
            etc.chmod(0o755)
            config = {
                "default_days": None,
                "servers": [
                    {
                        "name": "mx1",
                        "local": True,
                        "logs": ["/logs/howto/maillog"],
                        "year": 2024,
                    }
                ],
                "slack": {
                    "api_base_url": fake.api_url,
                    "http_host": "127.0.0.1",
                    "http_port": port,
                    "audit_log": "/var/log/mailtrace/audit.jsonl",
                },
            }
            (etc / "mailtrace.yaml").write_text(json.dumps(config))
            (etc / "mailtrace.yaml").chmod(0o644)
            docker(
                "run", "-d", "--name", NAME, "--network", "host", "--read-only",
                "--tmpfs", "/var/log/mailtrace:uid=10001",
                "-e", f"SLACK_BOT_TOKEN={BOT_TOKEN}", "-e", f"SLACK_SIGNING_SECRET={SECRET}",
                "-e", f"MAILTRACE_HEALTH_URL=http://127.0.0.1:{port}/healthz",
                "-v", f"{etc}:/etc/mailtrace:ro",
                "-v", f"{ROOT / 'tests' / 'fixtures'}:/logs:ro",
                IMAGE,
            )  # fmt: skip
            try:
                deadline = time.monotonic() + 60
                while True:
                    done = subprocess.run(
                        ["docker", "exec", NAME, "python", "-m", "bot.slack.health"],
                        capture_output=True,
                        check=False,
                    )
                    if done.returncode == 0:
                        break
                    if time.monotonic() > deadline:
                        logs = subprocess.run(
                            ["docker", "logs", NAME], capture_output=True, text=True, check=False
                        )
                        print("docker: serve never became healthy", file=sys.stderr)
                        print(logs.stdout + logs.stderr, file=sys.stderr)
                        return 1
                    await asyncio.sleep(1)
                body, headers = signed_slash_command_request(
                    SECRET,
                    text="sender2@example.net 2024-05-13",
                    user_id="U1",
                    channel_id="C1",
                    response_url=fake.response_url("r1"),
                )
                async with (
                    aiohttp.ClientSession() as session,
                    session.post(
                        f"http://127.0.0.1:{port}/slack/events", data=body, headers=headers
                    ) as response,
                ):
                    assert response.status == 200, response.status

                def replies() -> list[object] | None:
                    posts = [
                        c for c in fake.calls_to("chat.postMessage") if c.params.get("thread_ts")
                    ]
                    return posts or None

                await fake.wait_until(replies, 30.0, "the thread reply")
                started = time.monotonic()
                docker("stop", NAME)
                stop_s = time.monotonic() - started
                status = docker("inspect", "-f", "{{.State.ExitCode}}", NAME).strip()
                print(
                    f"docker: serve answered in a thread; docker stop {stop_s:.1f} s, exit {status}"
                )
                return 0 if stop_s < 10 and status == "0" else 1
            finally:
                subprocess.run(["docker", "rm", "-f", NAME], capture_output=True, check=False)


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
