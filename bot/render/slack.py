"""Slack messages for an answer: the parent summary and the thread replies, as Block Kit.

Strategy: `build_view` already says everything in plain lines; this module only escapes them for
mrkdwn (`&`, `<`, `>`: Postfix lines are full of `<a@b>`) and packs them into Slack's limits —
at most 3000 characters per section text and 50 blocks per message (and a modest total per
message, so a phone can scroll it). A line too long for one section is split, never cut; a
message too long for one reply is split into numbered parts; a summary too long for the parent
goes on in the thread. Blocks are built with `slack_sdk.models.blocks`, whose validators check
the limits again when the client serialises them. Every message has a plain `text` fallback
(notifications, screen readers, clients without blocks), escaped like the blocks: Slack reads it
as mrkdwn too, so a typed `<!channel>` would otherwise notify a whole channel.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.i18n import ENGLISH, Language
from bot.render.story import Story
from bot.render.view import AnswerView
from parsers.i18n import N_

MAX_BLOCKS = 50  # Slack: blocks per message
MAX_SECTION_CHARS = 3000  # Slack: characters per section text
MAX_CONTEXT_CHARS = 2000  # per context element; Slack truncates longer ones
MAX_MESSAGE_CHARS = 12_000  # our own budget per message: readable, far below Slack's caps
MAX_FALLBACK_CHARS = 3000  # `text` fallback: a summary, the blocks carry the whole content
ONE_REPLY_EACH_UP_TO = 20  # more mails than this share replies (chat.postMessage is ~1/s)
PARENT_VERDICTS = 10  # mails listed in the parent: it must fit on one phone screen
MAX_RESPONSES = 5  # Slack accepts five posts to one response_url
SHOW_LINES_ACTION = "show_log_lines"
INVITE_HINT = N_(
    "I can't post in this conversation, so only you can see this answer. "
    "Invite me (`/invite @mailtrace`) to get answers in a thread the whole channel can see."
)


@dataclass(frozen=True)
class SlackMessage:
    """One chat message: blocks plus the plain-text fallback."""

    text: str
    blocks: tuple[Block, ...]

    def as_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for chat.postMessage / chat.update / respond()."""
        return {"text": self.text, "blocks": list(self.blocks)}


@dataclass(frozen=True)
class SlackThread:
    """The parent message and the replies under it, in posting order."""

    parent: SlackMessage
    replies: tuple[SlackMessage, ...] = field(default_factory=tuple)


def escape(text: str) -> str:
    """Escape the three characters mrkdwn gives a meaning (`<@U1>`, `<url|label>`, entities)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """Undo `escape` (and Slack's escaping of what was typed: `&lt;` for `<`)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def split_escaped(line: str, limit: int) -> list[str]:
    """Escape one line and split it into pieces of at most `limit` characters, never inside
    an entity such as `&lt;` (the split happens on the raw text)."""
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for char in line:
        escaped = escape(char)
        if size + len(escaped) > limit and current:
            pieces.append("".join(current))
            current, size = [], 0
        current.append(escaped)
        size += len(escaped)
    pieces.append("".join(current))
    return pieces


def pack_lines(lines: Iterable[str], limit: int = MAX_SECTION_CHARS) -> list[str]:
    """Escape lines and join them into texts of at most `limit` characters each, in order."""
    chunks: list[str] = []
    current = ""
    for line in lines:
        for piece in split_escaped(line, limit):
            joined = f"{current}\n{piece}" if current else piece
            if len(joined) <= limit:
                current = joined
                continue
            if current:
                chunks.append(current)
            current = piece
    if current:
        chunks.append(current)
    return chunks


def fallback(lines: Iterable[str], limit: int = MAX_FALLBACK_CHARS) -> str:
    """The `text` of a message, escaped: the first lines that fit (the blocks hold the rest).

    The cut is made on the raw text, so that no entity such as `&lt;` is ever split.
    """
    text = "\n".join(lines)
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    return split_escaped(text[:limit], limit - 1)[0] + "…"  # escaping never shortens


def sections(lines: Iterable[str], *, title: str | None = None) -> list[Block]:
    """Section blocks holding `lines` (escaped), the first one starting with a bold title."""
    lines = list(lines)
    if title is not None:
        lines = [f"\0{title}", *lines]
    blocks: list[Block] = []
    for chunk in pack_lines(lines, MAX_SECTION_CHARS - 2):  # room for the title's asterisks
        if chunk.startswith("\0"):
            head, _, rest = chunk[1:].partition("\n")
            chunk = f"*{head}*" + (f"\n{rest}" if rest else "")
        blocks.append(SectionBlock(text=MarkdownTextObject(text=chunk, verbatim=True)))
    return blocks


def context(lines: Iterable[str]) -> list[Block]:
    """Small grey context blocks (what was searched, notes), up to ten elements each."""
    elements = [
        MarkdownTextObject(text=chunk, verbatim=True)
        for chunk in pack_lines(lines, MAX_CONTEXT_CHARS)
    ]
    return [ContextBlock(elements=elements[i : i + 10]) for i in range(0, len(elements), 10)]


def show_lines_button(value: str, index: int, lang: Language = ENGLISH) -> Block:
    """The "Show log lines" button of one message; `value` finds the lines in the bot's cache."""
    return ActionsBlock(
        elements=[
            ButtonElement(
                text=lang.gettext("Show log lines"),
                action_id=f"{SHOW_LINES_ACTION}:{index}",
                value=value,
            )
        ]
    )


def paginate(blocks: Sequence[Block], *, label: str, lang: Language = ENGLISH) -> list[list[Block]]:
    """Split blocks into messages within the block and size budgets; label parts "(2 of 3)"."""
    pages: list[list[Block]] = [[]]
    size = 0
    for block in blocks:
        chars = _chars(block)
        page = pages[-1]
        if page and (len(page) >= MAX_BLOCKS - 1 or size + chars > MAX_MESSAGE_CHARS):
            pages.append([])
            size = 0
        pages[-1].append(block)
        size += chars
    if len(pages) > 1:
        for number, page in enumerate(pages, start=1):
            page.append(
                ContextBlock(
                    elements=[
                        MarkdownTextObject(
                            text=lang.gettext("{label} — part {n} of {total}").format(
                                label=escape(label), n=number, total=len(pages)
                            ),
                            verbatim=True,
                        )
                    ]
                )
            )
    return pages


def render_progress(
    description: str, servers: Sequence[str], note: str, lang: Language = ENGLISH
) -> SlackMessage:
    """The parent while the search runs: what is being searched, where, and how far along."""
    _ = lang.gettext
    where = _(", ").join(servers) if servers else _("no servers")
    lines = [
        "🔎 " + _("Looking for {what}").format(what=description),
        _("Servers: {servers}").format(servers=where),
        note,
    ]
    return SlackMessage(text=fallback(lines), blocks=tuple(sections(lines)))


def render_thread(
    view: AnswerView, lines_key: str | None = None, lang: Language = ENGLISH
) -> SlackThread:
    """The whole answer: a parent a phone shows in one screen (the tally and one line per mail,
    at most ten), then one reply per mail with its story (or the diagnosis when nothing was
    found).

    `lines_key` names the answer's raw lines in the bot's cache; with it, every mail gets a
    "Show log lines" button whose value is `KEY:INDEX`.
    """
    _ = lang.gettext
    shown = view.verdicts[:PARENT_VERDICTS]
    if len(view.verdicts) > len(shown):
        more = len(view.verdicts) - len(shown)
        shown.append(_("…and {n} more mails in the thread.").format(n=more))
    parent_blocks = sections(
        shown or [view.empty_summary or _("I found no log line for it; the thread says why.")],
        title=view.headline,
    )
    # The parent stays one phone screen: what each server's logs cover goes to the thread.
    parent_blocks += context([*view.footer, *view.problems])
    pages = paginate(parent_blocks, label=_("Summary"), lang=lang)
    parent = SlackMessage(text=fallback([view.headline, *shown]), blocks=tuple(pages[0]))
    continued = _("{headline} (summary, continued)").format(headline=view.headline)
    replies = [SlackMessage(text=fallback([continued]), blocks=tuple(page)) for page in pages[1:]]
    details = [
        _story_pages(story, index, lines_key, lang) for index, story in enumerate(view.stories)
    ]
    if len(details) <= ONE_REPLY_EACH_UP_TO:
        replies += [reply for pages_ in details for reply in pages_]
    else:
        replies += _grouped(details, view.headline, lang)
    if not view.stories:
        diagnosis = view.diagnosis or [_("No likely reason stands out.")]
        reasons = _("Likely reasons")
        searched = [*view.footer, *view.coverage, *view.problems]
        blocks = sections(diagnosis, title=reasons) + sections(searched, title=_("What I searched"))
        replies += [
            SlackMessage(text=fallback([_("Likely reasons:"), *diagnosis]), blocks=tuple(page))
            for page in paginate(blocks, label=reasons, lang=lang)
        ]
    elif view.coverage:  # after the last story, small
        replies = _with_coverage(replies, view.coverage)
    return SlackThread(parent=parent, replies=tuple(replies))


def _with_coverage(replies: list[SlackMessage], coverage: list[str]) -> list[SlackMessage]:
    """The servers' coverage as a context block under the last reply, or a reply of its own."""
    extra = context(coverage)
    last = replies[-1] if replies else None
    if last is not None and _fits(last.blocks, extra):
        return [*replies[:-1], SlackMessage(text=last.text, blocks=(*last.blocks, *extra))]
    return [*replies, SlackMessage(text=fallback(coverage), blocks=tuple(extra))]


def render_for_respond(
    thread: SlackThread, hint: str | None = INVITE_HINT, lang: Language = ENGLISH
) -> list[SlackMessage]:
    """The same answer for a response_url (no thread): the hint first (in `lang`), then the
    parent and the replies merged into at most five posts; a last post says what did not fit,
    if anything."""
    messages = [thread.parent, *thread.replies]
    if hint:
        messages.insert(0, render_notice(lang.gettext(hint)))
    return _at_most_five(
        _merge(messages),
        lang.gettext("Invite me to get the whole answer in a thread, or narrow the query."),
        lang,
    )


def render_raw_lines(
    title: str, lines: Sequence[str], lang: Language = ENGLISH
) -> list[SlackMessage]:
    """Raw log lines as code blocks, for when a file cannot be uploaded (at most five posts)."""
    text = fallback([lang.gettext("Log lines of {title}").format(title=title)])
    messages = [
        SlackMessage(
            text=text,
            blocks=(SectionBlock(text=MarkdownTextObject(text=f"```{chunk}```", verbatim=True)),),
        )
        for chunk in pack_lines(lines or ["(no lines)"], MAX_SECTION_CHARS - 6)
    ]
    return _at_most_five(
        _merge(messages),
        lang.gettext("Invite me to the channel to get them as a file."),
        lang,
    )


def render_notice(text: str) -> SlackMessage:
    """A short message of our own (an error, a refusal), escaped and within limits."""
    return SlackMessage(text=fallback([text]), blocks=tuple(sections([text])))


def _story_pages(
    story: Story, index: int, lines_key: str | None, lang: Language
) -> list[SlackMessage]:
    """One mail's reply: the verdict in bold first, the recipients, then the evidence small."""
    blocks = sections(story.lines, title=story.verdict) + context(story.evidence)
    pages = paginate(blocks, label=story.title, lang=lang)
    if lines_key is not None and story.raw:
        button = show_lines_button(f"{lines_key}:{index}", index, lang)
        if len(pages[-1]) < MAX_BLOCKS:
            pages[-1].append(button)
        else:
            pages.append([button])
    text = fallback([story.verdict])
    return [SlackMessage(text=text, blocks=tuple(page)) for page in pages]


def _grouped(
    details: list[list[SlackMessage]], headline: str, lang: Language
) -> list[SlackMessage]:
    """Many mails: several per reply (a mail too long for one reply keeps its parts)."""
    replies = _merge(
        SlackMessage(text=page.text.partition("\n")[0], blocks=page.blocks)
        for pages in details
        for page in pages
    )
    note = lang.gettext(
        "{n} mails: their stories are grouped several to a reply ({replies} replies)."
    ).format(n=len(details), replies=len(replies))
    head = SlackMessage(text=fallback([headline, note]), blocks=tuple(context([note])))
    return [head, *replies]


def _merge(messages: Iterable[SlackMessage]) -> list[SlackMessage]:
    """Consecutive messages joined into as few as the block and size budgets allow, in order;
    their texts are joined too (a text repeated from the one before is kept once)."""
    posts: list[tuple[list[Block], list[str]]] = []
    for message in messages:
        if not posts or not _fits(posts[-1][0], message.blocks):
            posts.append(([], []))
        blocks, texts = posts[-1]
        blocks.extend(message.blocks)
        if not texts or texts[-1] != message.text:
            texts.append(message.text)
    return [
        SlackMessage(text=fallback(unescape(t) for t in texts), blocks=tuple(blocks))
        for blocks, texts in posts
    ]


def _fits(blocks: Sequence[Block], more: Sequence[Block]) -> bool:
    """Can `more` join `blocks` in one message (an empty message takes anything)?"""
    size = sum(_chars(b) for b in (*blocks, *more))
    return not blocks or (len(blocks) + len(more) <= MAX_BLOCKS and size <= MAX_MESSAGE_CHARS)


def _at_most_five(messages: list[SlackMessage], advice: str, lang: Language) -> list[SlackMessage]:
    """Slack takes five posts per response_url: keep four and say what the rest would hold."""
    if len(messages) <= MAX_RESPONSES:
        return messages
    left_out = len(messages) - (MAX_RESPONSES - 1)
    note = lang.ngettext(
        "{n} more part did not fit here (Slack allows five replies to a command). {advice}",
        "{n} more parts did not fit here (Slack allows five replies to a command). {advice}",
        left_out,
    ).format(n=left_out, advice=advice)
    return [*messages[: MAX_RESPONSES - 1], render_notice(note)]


def _chars(block: Block) -> int:
    """Characters of text a block carries (for the per-message budget)."""
    if isinstance(block, SectionBlock) and block.text is not None:
        return len(block.text.text)
    if isinstance(block, ContextBlock):
        return sum(len(getattr(e, "text", "") or "") for e in block.elements)
    return 50
