"""The asker's language: which one, its catalog, and how it writes dates and times.

Strategy: the catalogs are gettext `.po` files in `bot/locale/<lang>/LC_MESSAGES/`, shipped as
package data. Each is read with Babel the first time its language is asked for, and turned into a
`gettext.GNUTranslations` in memory (Babel writes the `.mo` bytes into a buffer), so there is
no compile step: `pip install -e .`, a wheel and the Docker image all work from the `.po`
alone, and a catalog edited in the repository is what runs. A `Language` is a translator (the
`parsers.i18n.Translator` the pure core takes) plus the locale's way of writing times.
English is the source language: its "catalog" is the identity.

`make i18n` re-extracts the messages (babel.cfg) into `bot/locale/mailtrace.pot` and updates
every `.po`; tests/test_i18n.py fails while a message has no translation.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from functools import cache
from pathlib import Path

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "mailtrace"
LANGUAGES = ("en", "ja")
DEFAULT = "en"
_WEEKDAYS_JA = "月火水木金土日"


@dataclass(frozen=True)
class Language:
    """One language: its code, its catalog, and its date and time formats."""

    code: str
    catalog: gettext.NullTranslations = field(repr=False)

    def gettext(self, message: str, /) -> str:
        return self.catalog.gettext(message)

    def ngettext(self, msgid1: str, msgid2: str, n: int, /) -> str:
        return self.catalog.ngettext(msgid1, msgid2, n)

    def when(self, moment: datetime | None, zone: tzinfo) -> str:
        """A full moment: '2024-05-13 16:03:05 JST' / '2024年5月13日(月) 16:03:05 JST'."""
        if moment is None:
            return "?"
        local = moment.astimezone(zone)
        if self.code == "ja":
            return f"{self.day(local)} {local:%H:%M:%S %Z}"
        return local.strftime("%Y-%m-%d %H:%M:%S %Z")

    def short_when(self, moment: datetime | None, zone: tzinfo) -> str:
        """A moment in a line: 'May 13 16:03' / '5月13日(月) 16:03'."""
        if moment is None:
            return "?"
        local = moment.astimezone(zone)
        if self.code == "ja":
            return f"{local.month}月{local.day}日({_WEEKDAYS_JA[local.weekday()]}) {local:%H:%M}"
        return local.strftime("%b %d %H:%M")

    def day(self, moment: datetime) -> str:
        """A day: '2024-05-13' / '2024年5月13日(月)'."""
        if self.code == "ja":
            wd = _WEEKDAYS_JA[moment.weekday()]
            return f"{moment.year}年{moment.month}月{moment.day}日({wd})"
        return moment.strftime("%Y-%m-%d")

    def minute(self, moment: datetime) -> str:
        """A day and a time: '2024-05-13 16:03' / '2024年5月13日(月) 16:03'."""
        return f"{self.day(moment)} {moment:%H:%M}"


@cache
def language(code: str) -> Language:
    """The language for a code this bot speaks ('en', 'ja'); anything else is English."""
    code = code if code in LANGUAGES else DEFAULT
    if code == DEFAULT:
        return Language(code, gettext.NullTranslations())
    return Language(code, _load(LOCALE_DIR / code / "LC_MESSAGES" / f"{DOMAIN}.po"))


ENGLISH = language(DEFAULT)


def _load(path: Path) -> gettext.GNUTranslations:
    # Babel only when a catalog is read: English (and `--help` in it) never needs it.
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with path.open("rb") as po:
        catalog = read_po(po, locale=path.parent.parent.name, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def code_of(locale: str | None) -> str | None:
    """'ja-JP', 'ja_JP.UTF-8', 'ja' -> 'ja'; 'en-US' -> 'en'; others (and C/POSIX) -> None."""
    if not locale:
        return None
    base = locale.replace("-", "_").split(".", 1)[0].split("_", 1)[0].lower()
    return base if base in LANGUAGES else None


def language_from_env(environ: Mapping[str, str]) -> Language:
    """The terminal's language, as gettext looks for it: LANGUAGE, LC_ALL, LC_MESSAGES, LANG."""
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name)
        if not value:
            continue
        for part in value.split(":"):  # LANGUAGE is a list: ja:en
            code = code_of(part)
            if code is not None:
                return language(code)
        if name != "LANGUAGE":  # the first set LC_* decides, as in setlocale(3)
            return ENGLISH
    return ENGLISH
