"""The catalogs against the code: every message has a Japanese translation, nothing is stale,
placeholders survive translation, and the CLI answers in the asker's language."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from bot.i18n import LOCALE_DIR, language, language_from_env

ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
_FIELD = re.compile(r"\{(\w*)[^{}]*\}")


def _code_msgids() -> set[str]:
    """What `make i18n` would extract now: the msgids of the code as it is."""
    found: set[str] = set()
    for package in ("bot", "parsers"):
        for _file, _line, message, _comments, _ctx in extract_from_dir(
            ROOT / package, method_map=[("**.py", "python")], keywords=KEYWORDS
        ):
            found.add(message[0] if isinstance(message, tuple) else message)
    return found


def _catalog(path: Path) -> dict[str, tuple[str, ...]]:
    with path.open("rb") as po:
        catalog = read_po(po)
    out: dict[str, tuple[str, ...]] = {}
    for m in catalog:
        if not m.id or "fuzzy" in m.flags:
            continue
        key = m.id[0] if isinstance(m.id, tuple) else m.id
        out[key] = tuple(m.string) if isinstance(m.string, tuple) else (m.string,)
    return out


def test_every_message_has_a_japanese_translation_and_none_is_stale() -> None:
    """A message in the code with no Japanese translation, or a catalog entry the code no
    longer has, fails with the exact msgids (run `make i18n`, then translate what it lists)."""
    code = _code_msgids()
    ja = _catalog(LOCALE_DIR / "ja" / "LC_MESSAGES" / "mailtrace.po")
    untranslated = sorted(m for m in code if not all(ja.get(m, ("",))))
    stale = sorted(set(ja) - code)
    report = "\n".join(
        [f"untranslated: {m!r}" for m in untranslated] + [f"stale: {m!r}" for m in stale]
    )
    problems = untranslated + stale
    assert not problems, "run `make i18n` and translate:\n" + report


def test_the_template_matches_the_code() -> None:
    """bot/locale/mailtrace.pot is what the extraction gives today (run `make i18n`)."""
    pot = _catalog(LOCALE_DIR / "mailtrace.pot")
    assert set(pot) == _code_msgids()


def test_translations_keep_their_placeholders() -> None:
    """Every {field} of a msgid is in its Japanese translation and no other: a lost or invented
    field would fail when the answer is formatted."""
    with (LOCALE_DIR / "ja" / "LC_MESSAGES" / "mailtrace.po").open("rb") as po:
        catalog = read_po(po)
    wrong = []
    for m in catalog:
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        fields = {f for msgid in ids for f in _FIELD.findall(msgid)}
        for s in strings:
            if s and set(_FIELD.findall(s)) != fields:
                wrong.append(f"{ids[0]!r} -> {s!r}")
    assert not wrong, "\n".join(wrong)


def test_japanese_catalog_loads_with_its_plural_forms() -> None:
    """The catalog read from the .po translates, and plural messages take the one Japanese
    form for any count."""
    ja = language("ja")
    assert ja.gettext("Delivered.") == "配送済み。"
    assert ja.ngettext("{n} mail", "{n} mails", 3).format(n=3) == "3通"
    assert language("en").ngettext("{n} mail", "{n} mails", 3).format(n=3) == "3 mails"


@pytest.mark.parametrize(
    ("environ", "code"),
    [
        ({"LANG": "ja_JP.UTF-8"}, "ja"),
        ({"LC_ALL": "C.UTF-8", "LANG": "ja_JP.UTF-8"}, "en"),
        ({"LANGUAGE": "ja:en", "LANG": "en_US.UTF-8"}, "ja"),
        ({}, "en"),
    ],
)
def test_terminal_language_follows_gettexts_variables(environ: dict[str, str], code: str) -> None:
    """LANGUAGE, then the first set of LC_ALL / LC_MESSAGES / LANG decides, as gettext does."""
    assert language_from_env(environ).code == code


def _cli(*args: str, lang: str = "C.UTF-8") -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "LANG": lang}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "trace", *args, "--config", "config/demo.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_cli_gives_the_same_answer_for_a_full_width_query() -> None:
    """A query typed with a Japanese IME (full-width letters, ＠, ．, ／, the ideographic space)
    gets the answer of its ASCII form, in Japanese under a Japanese LANG."""
    ascii_ = _cli("from-mixed@example.net", "2026-11-28", lang="ja_JP.UTF-8")
    wide = _cli(
        "ｆｒｏｍ－ｍｉｘｅｄ＠ｅｘａｍｐｌｅ．ｎｅｔ　２０２６／１１／２８", lang="ja_JP.UTF-8"
    )
    drop_timing = re.compile(r"\d+\.\d\d秒")
    assert ascii_.returncode == wide.returncode == 0, wide.stderr
    assert drop_timing.sub("", wide.stdout) == drop_timing.sub("", ascii_.stdout)
    assert "一部配送済み" in wide.stdout
    assert "mixed-bad@example.org はバウンス：受信者のメールボックスが存在しない" in wide.stdout


def test_cli_usage_errors_are_in_the_askers_language() -> None:
    """A query the grammar refuses is explained in Japanese with --lang ja, English without."""
    ja = _cli("from-mixed@example.net", "13月40日", "--lang", "ja")
    en = _cli("from-mixed@example.net", "13月40日")
    assert ja.returncode == en.returncode == 2
    assert "「13月40日」は存在しない日付です。" in ja.stderr
    assert "“13月40日” is not a real date." in en.stderr
