"""`python -m bot.slack.health`: the container's health check.

Strategy: the running bot serves GET /healthz (both modes; in Socket Mode it reports whether the
WebSocket to Slack is up). This module asks it and exits 0 for HTTP 200, 1 for anything else, so
a Dockerfile HEALTHCHECK needs neither curl nor a shell. The URL comes from
$MAILTRACE_HEALTH_URL (default http://127.0.0.1:3000/healthz, the default http_port).
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

URL_ENV = "MAILTRACE_HEALTH_URL"
DEFAULT_URL = "http://127.0.0.1:3000/healthz"


def is_healthy(url: str, timeout: float = 3.0) -> bool:
    """True when `url` answers 200."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{URL_ENV} must be an http(s) URL, not {url!r}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - checked above
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def main() -> int:
    url = os.environ.get(URL_ENV) or DEFAULT_URL
    healthy = is_healthy(url)
    sys.stdout.write(f"{'healthy' if healthy else 'unhealthy'}: {url}\n")
    return 0 if healthy else 1


if __name__ == "__main__":
    raise SystemExit(main())
