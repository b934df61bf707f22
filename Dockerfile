# mailtrace: the Slack bot (`mailtrace serve`) in a small image.
#
#   docker build -t mailtrace .
#   docker run -d --name mailtrace --restart unless-stopped \
#     -e SLACK_BOT_TOKEN -e SLACK_APP_TOKEN \
#     -v "$PWD/mailtrace.yaml:/etc/mailtrace/mailtrace.yaml:ro" \
#     -v "$PWD/keys:/etc/mailtrace/keys:ro" \
#     -v "$PWD/known_hosts:/etc/mailtrace/known_hosts:ro" \
#     -v mailtrace-audit:/var/log/mailtrace \
#     mailtrace
#
# Configuration, SSH keys and known_hosts are mounted read-only; nothing secret is baked in.
# See docs/slack.md ("Running in Docker").
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# ssh(1) for ProxyCommand-style set-ups and for debugging from inside the container;
# the bot itself speaks SSH through asyncssh. ripgrep, pigz and zstd: the faster tools the search
# uses on logs mounted into the container (a central log host's files), as on a server that has them.
RUN apt-get update \
    && apt-get install -y --no-install-recommends openssh-client ripgrep pigz zstd \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 mailtrace \
    && useradd --system --uid 10001 --gid mailtrace --home-dir /home/mailtrace \
       --create-home --shell /usr/sbin/nologin mailtrace \
    && mkdir -p /etc/mailtrace /var/log/mailtrace \
    && chown mailtrace:mailtrace /var/log/mailtrace

# The image's Python dependencies are pinned (config/image-constraints.txt, from `pip freeze` of
# a clean install): rebuilding gives the same image.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY config/image-constraints.txt ./
COPY bot ./bot
COPY parsers ./parsers
RUN pip install -c image-constraints.txt . && cd / && rm -rf /src

WORKDIR /home/mailtrace
USER 10001:10001

# /etc/mailtrace: mailtrace.yaml, keys/, known_hosts (read-only); /var/log/mailtrace: audit log.
VOLUME ["/etc/mailtrace", "/var/log/mailtrace"]
# HTTP mode: Slack's requests on /slack/events; both modes: /healthz (slack.http_port).
EXPOSE 3000

ENV MAILTRACE_HEALTH_URL=http://127.0.0.1:3000/healthz
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "bot.slack.health"]

# `docker stop` sends SIGTERM (the default stop signal): running searches get 5 s to finish, the
# rest are cancelled and say so; the whole shutdown takes at most 9 s, within its 10 s.
ENTRYPOINT ["mailtrace"]
CMD ["serve", "--config", "/etc/mailtrace/mailtrace.yaml"]
