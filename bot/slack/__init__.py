"""The Slack bot: `/mailtrace QUERY` answered in a thread (Bolt AsyncApp, Socket Mode or HTTP).

serve.py      `mailtrace serve`: secrets, Socket Mode or HTTP, health, graceful shutdown
app.py        build_app(): the Bolt app, its listeners and the answer flow
delivery.py   posting an answer: the parent, progress, replies; response_url fallback
access.py     who may ask, and where
directory.py  what Slack says about people: time zones, user group members (cached)
ratelimit.py  per-user rate limit
running.py    the global concurrency limit and the searches still running at shutdown
rawlines.py   raw log lines of recent answers, for the "Show log lines" button
audit.py      one JSON line per request, allowed or refused
secrets.py    tokens from the environment or files, never from the YAML
logs.py       structured (key=value) logging to stderr, with tokens redacted
health.py     `python -m bot.slack.health`: the container's health check
"""
