"""Packaging of the bot: the Slack app manifest, the Dockerfile and its build context."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import yaml
from slack_sdk.web.async_client import AsyncWebClient

from bot.cli.arguments import build_parser
from bot.slack.command import COMMAND
from bot.slack.webapi import COMMAND_SCOPE, SCOPES

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "config" / "slack-manifest.yaml"
DOCKERFILE = ROOT / "Dockerfile"


def manifest() -> dict[str, Any]:
    data = yaml.safe_load(MANIFEST.read_text())
    assert isinstance(data, dict)
    return data


def web_api_methods_called() -> set[str]:
    """Web API methods called anywhere in bot/slack/ (`client.chat_postMessage(` ...)."""
    methods: set[str] = set()
    for path in (ROOT / "bot" / "slack").glob("*.py"):
        for name in re.findall(r"\bclient\.([A-Za-z0-9_]+)\(", path.read_text()):
            if not hasattr(AsyncWebClient, name):
                continue  # e.g. the Socket Mode client's is_connected()
            if name == "files_upload_v2":
                methods |= {"files.getUploadURLExternal", "files.completeUploadExternal"}
            else:
                methods.add(name.replace("_", "."))
    return methods


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    current = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        current += " " + line.removesuffix("\\").strip()
        if not line.endswith("\\"):
            keyword, _, rest = current.strip().partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
            current = ""
    return instructions


def arguments(instruction: str) -> list[str]:
    """The arguments of the last such instruction, exec form (JSON) or shell form."""
    [*_, args] = [a for k, a in dockerfile() if k == instruction]
    if args.startswith("["):
        value = json.loads(args)
        assert isinstance(value, list)
        return [str(v) for v in value]
    return shlex.split(args)


def test_manifest_declares_the_slash_command_with_a_usage_hint() -> None:
    """The manifest creates /mailtrace with a description and a usage hint."""
    [command] = manifest()["features"]["slash_commands"]
    assert command["command"] == COMMAND
    assert command["description"]
    assert "@" in command["usage_hint"]
    assert len(command["usage_hint"]) <= 100  # Slack's limit for usage hints


def test_manifest_grants_every_scope_the_code_needs() -> None:
    """Each Web API method the bot calls has its scope in the manifest, and no more is asked."""
    called = web_api_methods_called()
    assert called <= set(SCOPES), f"add these methods to SCOPES: {called - set(SCOPES)}"
    needed = {scope for scope in SCOPES.values() if scope} | {COMMAND_SCOPE}
    granted = set(manifest()["oauth_config"]["scopes"]["bot"])
    assert needed <= granted, f"missing scopes: {needed - granted}"
    assert granted <= needed, f"scopes nothing uses: {granted - needed}"
    assert {"commands", "chat:write", "files:write", "users:read"} <= granted


def test_manifest_enables_socket_mode_and_interactivity() -> None:
    """Socket Mode is on (no public URL needed) and interactivity serves the button."""
    settings = manifest()["settings"]
    assert settings["socket_mode_enabled"] is True
    assert settings["interactivity"]["is_enabled"] is True


def test_dockerfile_uses_slim_python_and_installs_ssh_client() -> None:
    """The image is python:3.11-slim with openssh-client and the package installed by pip."""
    steps = dockerfile()
    assert steps[0] == ("FROM", "python:3.11-slim")
    runs = " ".join(a for k, a in steps if k == "RUN")
    assert "apt-get install" in runs
    assert "openssh-client" in runs
    assert "pip install -c image-constraints.txt ." in runs  # pinned: a rebuild is the same image
    copied = [a.split()[0] for k, a in steps if k == "COPY"]
    for source in copied:
        assert (ROOT / source).exists(), f"COPY {source}: no such file"


def test_dockerfile_runs_as_non_root() -> None:
    """The last USER is neither root nor uid 0, and it is set before the entrypoint."""
    steps = dockerfile()
    users = [i for i, (k, _) in enumerate(steps) if k == "USER"]
    assert users
    user = steps[users[-1]][1].split(":")[0]
    assert user not in ("root", "0")
    entry = next(i for i, (k, _) in enumerate(steps) if k == "ENTRYPOINT")
    assert users[-1] < entry


def test_dockerfile_entrypoint_is_the_console_script_and_cmd_serves() -> None:
    """ENTRYPOINT is the `mailtrace` console script; CMD is a valid `serve` command line."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    [entrypoint] = arguments("ENTRYPOINT")
    assert entrypoint in scripts
    cmd = arguments("CMD")
    args = build_parser().parse_args(cmd)
    assert args.command == "serve"
    volumes = json.loads(next(a for k, a in dockerfile() if k == "VOLUME"))
    assert any(args.config.startswith(v + "/") for v in volumes)


def test_dockerfile_healthcheck_runs_an_existing_module() -> None:
    """HEALTHCHECK runs `python -m bot.slack.health`, which is part of the package."""
    [args] = [a for k, a in dockerfile() if k == "HEALTHCHECK"]
    command = json.loads(args.split("CMD", 1)[1].strip())
    assert command[:2] == ["python", "-m"]
    assert importlib.util.find_spec(command[2]) is not None
    from setuptools import find_packages

    setuptools_config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    include = setuptools_config["packages"]["find"]["include"]
    assert command[2].rsplit(".", 1)[0] in find_packages(where=str(ROOT), include=include)


def test_dockerignore_keeps_secrets_and_tests_out_of_the_build_context() -> None:
    """The build context leaves out .git, tests and key files but keeps the package."""
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", "tests", "*.pem", ".env"} <= ignored
    assert not {"bot", "parsers", "config", "pyproject.toml", "README.md"} & ignored


def test_every_module_is_in_a_package_the_build_ships() -> None:
    """Every folder of bot/ and parsers/ with Python modules is a package (an __init__.py) that
    pyproject's package discovery includes, so the wheel and the Docker image hold every module
    (a subpackage left out once made `serve` fail in the image)."""
    from fnmatch import fnmatch

    from setuptools import find_packages

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    shipped = set(find_packages(where=str(ROOT), include=include))
    folders = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for top in ("bot", "parsers")
        for path in (ROOT / top).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert folders - shipped == set()
    assert all(any(fnmatch(p, pattern) for pattern in include) for p in folders)
    data = config["tool"]["setuptools"]["package-data"]["bot"]
    assert "locale/*/LC_MESSAGES/*.po" in data
