"""Configuration validation: clear errors that name the field, safe defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.settings import load_settings


def _load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "mailtrace.yaml"
    path.write_text(text)
    return load_settings(path)


def test_relative_local_paths_follow_the_file(tmp_path: Path) -> None:
    """Local log globs are relative to the configuration file, not the working directory."""
    settings = _load(tmp_path, "servers:\n  - {name: mx, local: true, logs: [logs/mail.log*]}\n")
    assert settings.servers[0].logs == (f"{tmp_path}/logs/mail.log*",)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            "servers:\n  - {name: mx, host: mx.example, source: syslog}\n",
            "source: Input should be 'files' or 'journald'",
        ),
        ("servers:\n  - {name: mx}\n", "set `host` (SSH) or `local: true`"),
        (
            "servers:\n  - {name: mx, local: true, logs: ['/var/*/mail.log']}\n",
            "wildcards are allowed in the file name only",
        ),
        ("servers:\n  - {name: mx, local: true, timezone: Mars/Olympus}\n", "unknown time zone"),
        ("servers:\n  - {name: a, local: true}\n  - {name: a, local: true}\n", "is used twice"),
        (
            "servers:\n  - {name: a, host: h, jump: nowhere}\n",
            "jump host 'nowhere' is not configured",
        ),
        (
            "slack: {api_base_url: 'http://slack.example.com/api/'}\n",
            "api_base_url must be https://",
        ),
        ("slack: {bot_token: xoxb-123}\n", "slack.bot_token: Extra inputs are not permitted"),
        ("- just a list\n", "the top level must be a mapping"),
        ("servers: [\n", "is not valid YAML"),
    ],
)
def test_bad_configuration_names_the_problem(tmp_path: Path, text: str, words: str) -> None:
    """Each mistake is a ConfigError whose message names the file and the problem."""
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    assert words in str(info.value)
    assert str(tmp_path / "mailtrace.yaml") in str(info.value)


def test_loopback_http_api_is_allowed(tmp_path: Path) -> None:
    """A local fake or proxy on loopback may use plain http."""
    settings = _load(
        tmp_path,
        "servers: [{name: mx, local: true}]\nslack: {api_base_url: 'http://127.0.0.1:8080/api/'}\n",
    )
    assert settings.slack is not None
    assert settings.slack.api_base_url == "http://127.0.0.1:8080/api/"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("servers: []\n", "mailtrace.yaml: servers: list at least one server"),
        ("", "mailtrace.yaml: servers: list at least one server"),
        ("timezone: UTC\n", "mailtrace.yaml: servers: list at least one server"),
        (
            "servers:\n  - name: mx1\n    local: true\n    logs: /var/log/mail.log\n",
            'mailtrace.yaml: servers (mx1): logs: a list is expected, e.g. logs: ["/var/log/mail.log"]',
        ),
        (
            "servers:\n  - name: mx1\n   local: true\n",
            "mailtrace.yaml is not valid YAML at line 3, column 4",
        ),
    ],
)
def test_config_mistakes_are_one_line_naming_file_and_field(
    tmp_path: Path, text: str, line: str
) -> None:
    """An empty server list, a string for a list and broken YAML are one line with the file."""
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    message = str(info.value)
    assert "\n" not in message
    assert message == str(tmp_path) + "/" + line or message.startswith(f"{tmp_path}/{line}")
