"""The live queue's command lines: only queue IDs and a plain configured directory get in."""

from __future__ import annotations

import shlex

import pytest
from pydantic import ValidationError

from bot.settings import ServerConfig
from bot.sources.queue_commands import live_command, text_queue_command


@pytest.mark.parametrize("bad", ["ABC;rm -rf /", "$(id)", "ABCDE FGHIJ", "abc", "'quoted'"])
def test_anything_but_a_queue_id_is_refused(bad: str) -> None:
    """A value that is not letters and digits never becomes part of a queue command."""
    with pytest.raises(ValueError, match="not a queue ID"):
        live_command([bad], None)
    with pytest.raises(ValueError, match="not a queue ID"):
        text_queue_command([bad], None)


@pytest.mark.parametrize("bad", ["etc/postfix", "/etc/postfix;id", "/etc/$(id)", "/a/../b", "/a b"])
def test_postfix_config_dir_must_be_a_plain_absolute_path(bad: str) -> None:
    """The configured Postfix directory is refused in the settings unless plain and absolute."""
    with pytest.raises(ValidationError, match="postfix_config_dir"):
        ServerConfig(name="mx1", host="mx1.example.com", postfix_config_dir=bad)


def test_commands_are_wrapped_quoted_and_fixed() -> None:
    """The command runs under timeout and LC_ALL=C, with -c DIR and the IDs as fixed strings."""
    command = live_command(["4jcGgY69KlzJbH2", "D3833220343"], "/etc/postfix-out", 30)
    argv = shlex.split(command)
    assert argv[:8] == ["exec", "env", "LC_ALL=C", "timeout", "-k", "5", "30", "sh"]
    script = argv[-1]
    assert "postqueue -c /etc/postfix-out -j" in script
    assert "postconf -c /etc/postfix-out maximal_queue_lifetime" in script
    assert "grep -F -e 4jcGgY69KlzJbH2 -e D3833220343" in script
    text = shlex.split(text_queue_command(["D3833220343"], None))[-1]
    assert "postqueue -p" in text
    assert "/^(D3833220343)[*!]?$/" in text
