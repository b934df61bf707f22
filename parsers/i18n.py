"""Translatable words in the pure core, with no global state and no I/O.

Strategy: a function that words something takes a `Translator` (the two methods of the
standard library's `gettext.NullTranslations`) and calls `_ = tr.gettext` on its literal
English text; `bot/i18n.py` loads the catalogs and passes the asker's translator in. English
is the identity translator below, the default everywhere, so a caller that does not care
about language changes nothing. Tables built at import time mark their words with `N_` (for
extraction) and translate them where they are used. Placeholders are `{name}` fields filled
after translation, so a translation may move them.
"""

from __future__ import annotations

import gettext
from typing import Protocol


class Translator(Protocol):
    """What the core needs of a catalog: `gettext.GNUTranslations` and `NullTranslations`
    fit."""

    def gettext(self, message: str, /) -> str: ...

    def ngettext(self, msgid1: str, msgid2: str, n: int, /) -> str: ...


ENGLISH: Translator = gettext.NullTranslations()


def N_(message: str) -> str:  # the gettext convention the extraction looks for
    """Mark `message` for extraction; it is translated where it is used."""
    return message
