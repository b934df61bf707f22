"""Japanese beyond the stories: the causes and next steps of a nothing-found answer (CLI and the
Slack thread through the real Bolt app), the Slack notices and buttons of a ja-JP asker,
`mailtrace doctor`'s rows and the CLI's --help. The real captured logs everywhere."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.settings import SlackConfig
from bot.slack.audit import Outcome
from tests.test_slack_app import (
    SCENARIOS,
    USER,
    BotFactory,
    log_settings,
    text_of,
    two_host_settings,
)
from tests.test_slack_app import fake as fake
from tests.test_slack_app import make_bot as make_bot

ROOT = Path(__file__).resolve().parent.parent
DEMO = str(ROOT / "config" / "demo.yaml")
HOWTO_LOG = ROOT / "tests" / "fixtures" / "howto" / "maillog"
# English sentences of the diagnosis that must not be left in a Japanese answer
ENGLISH_WORDS = re.compile(
    r"Likely reasons|evidence:|next:|probably never reached|other days|Ask again|Check the "
)


def trace_ja(*query: str, capsys: pytest.CaptureFixture[str]) -> str:
    status = main(["trace", *query, "--config", DEMO, "--lang", "ja"])
    assert status == 1  # nothing found
    return capsys.readouterr().out


def test_cli_nothing_found_has_japanese_causes_and_next_steps(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An address the captured logs never name: the causes, their evidence (times in the
    Japanese form) and the next steps are Japanese; the suggested query stays typable."""
    out = trace_ja("nobody@example.net", "2026-11-28", capsys=capsys)
    assert "考えられる理由：" in out
    assert "このメールはおそらく当方のサーバーに届いていません。" in out
    assert "根拠：mx-a の最も古いログ行は 2026年11月28日(土) 16:58 UTC のものです" in out
    assert "次の手順：送信者が本当に送ったか" in out
    assert "そのドメインの他のメールを見るには：`@example.net 2026-11-28`" in out
    assert not ENGLISH_WORDS.search(out), out


def test_cli_other_day_and_other_time_are_told_in_japanese(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The captured mail asked for on the wrong day, then at the wrong hour: each cause names
    where it really is, in Japanese dates, with a query to paste in the grammar's form."""
    day = trace_ja("from-mixed@example.net", "2026-11-27", capsys=capsys)
    assert "1. ログにはありますが、指定された日とは別の日です。" in day
    assert "根拠：from-mixed@example.net を含む行がある日：2026年11月28日(土)" in day
    assert "次の手順：これらの日付のどれかで検索し直してください：" in day
    assert "`from-mixed@example.net 2026-11-28`" in day
    hour = trace_ja("from-mixed@example.net", "2026-11-28", "10:00", capsys=capsys)
    assert "指定された時刻の前後1時間には入っていません。" in hour
    assert "from-mixed@example.net を含む行の時刻：2026年11月28日(土) 16:58（UTC）" in hour
    assert "`from-mixed@example.net 2026-11-28 16:58`" in hour
    assert not ENGLISH_WORDS.search(day + hour)


def test_english_nothing_found_is_unchanged(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --lang (and a C locale) the same answer is English, word for word as before."""
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    status = main(["trace", "from-mixed@example.net", "2026-11-27", "--config", DEMO])
    out = capsys.readouterr().out
    assert status == 1
    assert "1. It was logged, but on other days than the one asked about." in out
    assert "   evidence: lines naming from-mixed@example.net on: 2026-11-28" in out
    assert "   next: Ask again with one of those dates: `from-mixed@example.net 2026-11-28`." in out


async def test_slack_nothing_found_thread_is_japanese(make_bot: BotFactory) -> None:
    """A ja-JP asker in Tokyo asks for the captured mail on the wrong day: the thread's causes
    and next steps are Japanese, the suggested day is Tokyo's, within the block limits."""
    if not SCENARIOS.exists():
        pytest.skip(f"no {SCENARIOS.name} yet")
    bot = await make_bot(two_host_settings())
    bot.fake.users[USER] = {"locale": "ja-JP", "tz": "Asia/Tokyo"}
    _, ack, _ = await bot.command("from-mixed@example.net 2026年11月27日")
    assert ack["text"].startswith("🔎 「from-mixed@example.net 2026年11月27日」を検索しています")
    [entry] = await bot.audit.wait(1)
    assert entry.outcome is Outcome.NOTHING_FOUND, entry
    parent, replies = bot.thread()
    assert "見つかりませんでした" in text_of(parent)
    thread = "\n".join(text_of(r) for r in replies)
    assert "*考えられる理由*" in thread
    assert "*検索した範囲*" in thread
    assert "1. ログにはありますが、指定された日とは別の日です。" in thread
    assert "根拠：from-mixed@example.net を含む行がある日：2026年11月29日(日)" in thread
    assert "`from-mixed@example.net 2026-11-29`" in thread  # 16:58 UTC is the 29th in Tokyo
    assert not ENGLISH_WORDS.search(thread), thread
    for message in (parent, *replies):
        blocks = message.get("blocks") or []
        assert len(blocks) <= 50
        assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in blocks)


def button_labels(message: dict[str, Any]) -> list[str]:
    return [
        e["text"]["text"]
        for block in message.get("blocks") or []
        if block["type"] == "actions"
        for e in block["elements"]
    ]


async def test_slack_button_help_and_limits_are_japanese_for_a_ja_asker(
    make_bot: BotFactory,
) -> None:
    """For a ja-JP asker: the "Show log lines" button, the help, a usage error's hint and the
    rate-limit notice are Japanese; an English asker of the same bot still gets English."""
    bot = await make_bot(log_settings(HOWTO_LOG, rate_limit_per_minute=1))
    bot.fake.users[USER] = {"locale": "ja-JP", "tz": "Asia/Tokyo"}
    _, first, _ = await bot.command("sender2@example.net 2024-05-13")
    _, second, _ = await bot.command("sender2@example.net 2024-05-13")
    _, helped, _ = await bot.command("help")
    _, wrong, _ = await bot.command("sender2@example.net 2024-13-45")
    _, english, _ = await bot.command("help", user="U2")
    await bot.audit.wait(5)
    assert "を検索しています… 回答はここに表示されます。" in first["text"]
    assert second["text"].startswith("1分あたりの検索回数の上限（1回）に達しました。")
    assert second["text"].endswith("秒後にもう一度お試しください。")
    assert helped["text"].startswith("*/mailtrace* は、当方のPostfixのログから")
    assert "サーバー：mx1。日時はあなたのSlackのタイムゾーンで表示します。" in helped["text"]
    assert wrong["text"].endswith("\n書き方の一覧は `/mailtrace help` で表示できます。")
    assert english["text"].startswith("*/mailtrace* tells you what happened to an email")
    _, replies = bot.thread()
    labels = [label for r in replies for label in button_labels(r)]
    assert labels == ["ログ行を表示"]


async def test_slack_refusal_is_japanese_for_a_ja_asker(make_bot: BotFactory) -> None:
    """A ja-JP user who is not on the allowed list is refused in Japanese, with their ID."""
    bot = await make_bot(log_settings(HOWTO_LOG, allowed_users=("UOK",)))
    bot.fake.users["UNO"] = {"locale": "ja-JP"}
    _, body, _ = await bot.command("sender2@example.net 2024-05-13", user="UNO")
    assert body["text"].startswith("申し訳ありません。あなたは /mailtrace を使える人の一覧に")
    assert "（あなたのSlackユーザーIDは UNO です）" in body["text"]
    [entry] = await bot.audit.wait(1)
    assert entry.reason == "user not allowed"  # the audit log stays English


async def test_japanese_language_fixed_in_the_configuration_words_the_progress(
    make_bot: BotFactory,
) -> None:
    """`slack.language: ja` words the progress parent and the summary for everyone."""
    settings = log_settings(HOWTO_LOG)
    settings = settings.model_copy(update={"slack": SlackConfig(language="ja")})
    bot = await make_bot(settings)
    await bot.command("sender2@example.net 2024-05-13")
    await bot.audit.wait(1)
    first = bot.fake.calls_to("chat.postMessage")[0].params
    assert "🔎 sender2@example.net（2024年5月13日(月)） を検索しています" in first["text"]
    assert "サーバー：mx1" in first["text"]


def test_doctor_rows_are_japanese_with_lang_ja(capsys: pytest.CaptureFixture[str]) -> None:
    """`mailtrace doctor --lang ja` on the demo's captured logs: Japanese headers, states,
    details and closing count, columns still aligned under wide characters."""
    status = main(["doctor", "--config", DEMO, "--lang", "ja"])
    out = capsys.readouterr().out
    assert status == 0
    header, *rows = out.splitlines()
    assert header.split() == ["サーバー", "状態", "ファイル数", "ログの期間（UTC）", "経路", "詳細"]
    assert "ログファイル1件を読み取り可能" in out
    assert rows[-1] == "2台中2台が正常"
    server_rows = [r for r in rows if r.startswith("mx-")]
    assert len(server_rows) == 2
    assert all(" 正常 " in r for r in server_rows)
    # the route column starts at the same terminal column in the header and every row
    assert {column(r, "local") for r in server_rows} == {column(header, "経路")}


def column(line: str, text: str) -> int:
    """The terminal column where `text` starts in `line` (wide characters take two)."""
    before = line[: line.index(text)]
    return len(before) + len(re.findall(r"[\u3000-\u9fff\uff00-\uffef]", before))


def test_doctor_english_is_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --lang under a C locale doctor's table keeps its English words."""
    status = main(["doctor", "--config", DEMO, "--lang", "en"])
    out = capsys.readouterr().out
    assert status == 0
    assert out.splitlines()[0].split()[:3] == ["SERVER", "STATUS", "FILES"]
    assert out.splitlines()[-1] == "2 of 2 servers ok"


def help_of(*args: str, lang: str = "C.UTF-8") -> str:
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "LANG": lang},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_help_follows_lang_option_and_the_terminal_locale() -> None:
    """`--help` is Japanese with --lang ja (given before or after --help) or a Japanese LANG,
    argparse's own words included; English otherwise."""
    for args, lang in (
        (("trace", "--lang", "ja", "--help"), "C.UTF-8"),
        (("trace", "--help", "--lang=ja"), "C.UTF-8"),
        (("trace", "--help"), "ja_JP.UTF-8"),
    ):
        out = help_of(*args, lang=lang)
        assert out.startswith("使い方：mailtrace trace [-h]"), out
        assert "オプション:" in out
        assert "このヘルプを表示して終了する" in out
        assert "これらのローカルファイルを検索する" in out
    doctor = help_of("doctor", "--help", lang="ja_JP.UTF-8")
    assert "設定された全サーバー" not in doctor  # the subcommand's own help, not the list's
    assert "回答の言語" in doctor
    english = help_of("trace", "--help")
    assert english.startswith("usage: mailtrace trace [-h]")
    assert "show this help message and exit" in english
