"""Slack rendering: mrkdwn escaping and Slack's limits, on results of real searches."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.query import parse_query
from bot.render.slack import (
    MAX_BLOCKS,
    MAX_FALLBACK_CHARS,
    MAX_RESPONSES,
    MAX_SECTION_CHARS,
    SlackMessage,
    SlackThread,
    escape,
    fallback,
    pack_lines,
    render_for_respond,
    render_notice,
    render_raw_lines,
    render_thread,
    split_escaped,
)
from bot.render.view import build_view
from bot.result import SearchResult
from bot.search import run_search
from bot.settings import ServerConfig, Settings
from bot.sources.factory import build_sources

ZONE = ZoneInfo("Europe/Berlin")
NOW = datetime(2024, 5, 20, 12, tzinfo=UTC)


def maillog(messages: int, recipients: int = 1, *, sender: str = "big@example.net") -> str:
    """Postfix lines (syslog format) for `messages` bounced messages from one sender."""
    lines = []
    for i in range(messages):
        qid = f"{0x4A1B2C3D00 + i * 7919:X}"[-10:]
        second = i % 60
        minute = 10 + i // 60 % 40
        stamp = f"May 13 10:{minute:02d}:{second:02d}"
        lines += [
            f"{stamp} mail postfix/smtpd[2211]: {qid}: client=mail.example.net[192.0.2.10]",
            f"{stamp} mail postfix/cleanup[2214]: {qid}: message-id=<{i}.x@example.net>",
            f"{stamp} mail postfix/qmgr[1090]: {qid}: from=<{sender}>, size=2345, "
            f"nrcpt={recipients} (queue active)",
        ]
        for r in range(recipients):
            rcpt = f"user{r}@example.org"
            lines.append(
                f"{stamp} mail postfix/smtp[2216]: {qid}: to=<{rcpt}>, "
                "relay=mx.example.org[203.0.113.5]:25, delay=0.6, delays=0.1/0.01/0/0.49, "
                "dsn=5.1.1, status=bounced (host mx.example.org[203.0.113.5] said: 550 5.1.1 "
                f"<{rcpt}>: Recipient address rejected: User unknown & gone "
                "(in reply to RCPT TO command))"
            )
        lines.append(f"{stamp} mail postfix/qmgr[1090]: {qid}: removed")
    return "\n".join(lines) + "\n"


async def search(tmp_path: Path, text: str, log: str) -> SearchResult:
    path = tmp_path / "maillog"
    path.write_text(log)
    server = ServerConfig(name="mx1", local=True, logs=(str(path),), year=2024)
    settings = Settings(default_days=None, servers=(server,))
    query = parse_query(text, now=NOW, zone=ZONE)
    return await run_search(query, settings, build_sources(settings), now=NOW)


def block_dicts(message: SlackMessage) -> list[dict[str, Any]]:
    """The blocks as Slack receives them (slack_sdk's validators run here)."""
    return [block.to_dict() for block in message.blocks]


def texts(message: SlackMessage) -> list[str]:
    """Every mrkdwn text in a message's blocks."""
    out = []
    for block in block_dicts(message):
        if "text" in block:
            out.append(block["text"]["text"])
        out.extend(e["text"] for e in block.get("elements", []) if e.get("type") == "mrkdwn")
    return out


def assert_within_limits(message: SlackMessage) -> None:
    blocks = block_dicts(message)
    assert 0 < len(blocks) <= MAX_BLOCKS
    for block in blocks:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= MAX_SECTION_CHARS
    assert message.text.strip()
    assert len(message.text) <= 3000


def all_messages(thread: SlackThread) -> list[SlackMessage]:
    return [thread.parent, *thread.replies]


def test_escape_replaces_the_three_mrkdwn_characters() -> None:
    """&, < and > become entities, & first so entities are not escaped twice."""
    assert escape("a & b <x@y.example> -> ok") == "a &amp; b &lt;x@y.example&gt; -&gt; ok"


def test_split_escaped_never_cuts_an_entity() -> None:
    """A long line of brackets is split within the limit without breaking `&lt;` apart."""
    line = "<a@b>&" * 1000
    pieces = split_escaped(line, 100)
    assert all(len(p) <= 100 for p in pieces)
    assert "".join(pieces) == escape(line)
    assert "".join(html.unescape(p) for p in pieces) == line


def test_pack_lines_keeps_every_line_in_order() -> None:
    """Packing joins lines into chunks within the limit and loses nothing."""
    lines = [f"line {i} <x>" for i in range(2000)]
    chunks = pack_lines(lines, 3000)
    assert all(len(c) <= 3000 for c in chunks)
    assert "\n".join(chunks) == "\n".join(escape(line) for line in lines)


def test_fallback_text_is_escaped_and_cut_between_entities() -> None:
    """The plain `text` is escaped like the blocks; a long one is cut within the limit on the
    raw text, so no `&lt;` is ever split and nothing but the tail is lost."""
    assert fallback(["<!channel> & <@U1>"]) == "&lt;!channel&gt; &amp; &lt;@U1&gt;"
    line = "<a@b>&" * 1000
    text = fallback([line])
    assert len(text) <= MAX_FALLBACK_CHARS
    assert text.endswith("…")
    assert line.startswith(html.unescape(text[:-1]))
    assert not any(
        text[:-1].endswith(e[:n]) for e in ("&lt;", "&gt;", "&amp;") for n in range(1, len(e))
    )


def test_merged_posts_keep_the_text_escaped_once() -> None:
    """Messages merged into one response_url post keep every `<` escaped, exactly once."""
    thread = SlackThread(
        parent=render_notice("from=<a@example.net> & co"),
        replies=(render_notice("to=<b@example.org>"),),
    )
    [post] = render_for_respond(thread, hint=None)
    assert post.text == "from=&lt;a@example.net&gt; &amp; co\nto=&lt;b@example.org&gt;"


async def test_postfix_addresses_are_escaped_in_every_block(tmp_path: Path) -> None:
    """The remote server's words `<user0@example.org>` reach Slack as entities, never raw."""
    result = await search(tmp_path, "big@example.net 2024-05-13", maillog(1))
    thread = render_thread(build_view(result, ZONE), "key")
    joined = "\n".join(t for m in all_messages(thread) for t in texts(m))
    assert "&lt;user0@example.org&gt;" in joined
    assert "User unknown &amp; gone" in joined
    assert "<user0@" not in joined
    assert " & " not in joined


async def test_large_result_respects_limits_and_keeps_every_message(tmp_path: Path) -> None:
    """150 mails: every post is within Slack's limits, the parent lists ten and says how many
    more, and every mail still has its story and its button in the thread."""
    result = await search(tmp_path, "big@example.net 2024-05-13", maillog(150))
    assert len(result.messages) == 150
    thread = render_thread(build_view(result, ZONE), "key")
    for message in all_messages(thread):
        assert_within_limits(message)
    joined = "\n".join(t for m in all_messages(thread) for t in texts(m))
    for m in result.messages:
        assert f"Queue IDs: mx1 {m.queue_id}" in joined  # each mail's story
    parent = texts(thread.parent)
    head = parent[0].splitlines()
    assert head[0].endswith(" — 150 mails: 150 bounced*")
    assert len([t for t in head if t.startswith("❌ Bounced")]) == 10  # one phone screen
    assert "…and 140 more mails in the thread." in head
    stories = [t for t in joined.splitlines() if t.startswith("*❌ Bounced")]
    assert len(stories) == 150
    assert len(thread.replies) < 150  # stories are grouped several to a reply
    buttons = [b for m in all_messages(thread) for b in block_dicts(m) if b["type"] == "actions"]
    assert len(buttons) == 150


async def test_enormous_message_is_split_into_numbered_parts(tmp_path: Path) -> None:
    """One message with 1500 recipients becomes numbered parts, each within the limits."""
    result = await search(tmp_path, "big@example.net 2024-05-13", maillog(1, recipients=1500))
    thread = render_thread(build_view(result, ZONE), "key")
    parts = thread.replies
    assert len(parts) > 2
    for message in all_messages(thread):
        assert_within_limits(message)
    labels = [t for m in parts for t in texts(m) if " — part " in t]
    assert labels[0].endswith(f"part 1 of {len(parts)}")
    assert labels[-1].endswith(f"part {len(parts)} of {len(parts)}")
    joined = "\n".join(t for m in parts for t in texts(m))
    assert all(f"user{r}@example.org" in joined for r in range(1500))
    actions = [i for i, m in enumerate(parts) for b in block_dicts(m) if b["type"] == "actions"]
    assert actions == [len(parts) - 1]  # the button once, on the last part


async def test_nothing_found_puts_the_diagnosis_in_the_thread(tmp_path: Path) -> None:
    """An empty result says so in the parent and gives the likely reasons in a reply."""
    result = await search(tmp_path, "nobody@example.net 2024-05-13", maillog(3))
    thread = render_thread(build_view(result, ZONE), None)
    assert "nothing found" in texts(thread.parent)[0]
    [reply] = thread.replies
    assert texts(reply)[0].startswith("*Likely reasons*")
    assert not any(b["type"] == "actions" for b in block_dicts(reply))


async def test_respond_fallback_fits_five_posts_and_says_what_did_not_fit(tmp_path: Path) -> None:
    """Through response_url the answer takes at most five posts, the hint first, never cut
    silently."""
    result = await search(tmp_path, "big@example.net 2024-05-13", maillog(1, recipients=1500))
    posts = render_for_respond(render_thread(build_view(result, ZONE), "key"))
    assert len(posts) == MAX_RESPONSES
    for post in posts:
        assert_within_limits(post)
    assert "/invite @mailtrace" in texts(posts[0])[0]
    assert "did not fit here" in texts(posts[-1])[0]


def test_raw_lines_fallback_uses_code_blocks_within_limits() -> None:
    """Log lines shown without a file are escaped code blocks, at most five posts."""
    lines = [f"May 13 10:00:11 mail postfix/smtp[1]: to=<u{i}@example.org>" for i in range(3000)]
    posts = render_raw_lines("mx1 ABCDEF123", lines)
    assert 1 < len(posts) <= MAX_RESPONSES
    for post in posts:
        assert_within_limits(post)
    first = texts(posts[0])[0]
    assert first.startswith("```")
    assert "&lt;u0@example.org&gt;" in first
