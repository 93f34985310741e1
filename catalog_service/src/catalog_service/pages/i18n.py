"""Dutch and English pages: which language a reader gets, and the words in it.

The words live in gettext catalogs (``translations/<language>.po``), the format every
translation tool reads; polib compiles them at start-up, so editing one needs no
build step. The reader's choice (``?lang=``, remembered in a cookie) comes before the
browser's ``Accept-Language``; English is the fallback.
"""

from __future__ import annotations

import functools
import io
from contextvars import ContextVar, Token
from gettext import GNUTranslations, NullTranslations
from pathlib import Path
from typing import Final

import polib

LANGUAGES: Final = ("en", "nl")
DEFAULT: Final = "en"
# The names of the languages, each in its own language, for the switch.
NAMES: Final = {"en": "English", "nl": "Nederlands"}
COOKIE: Final = "lang"
CATALOGS = Path(__file__).parent / "translations"
# An Accept-Language header longer than this many ranges is read no further.
MAX_RANGES = 32

# The language of the page being rendered (rendering is synchronous: set, render, reset).
_current: ContextVar[str] = ContextVar("language", default=DEFAULT)


@functools.cache
def translations(language: str) -> NullTranslations:
    if language == DEFAULT:
        return NullTranslations()
    catalog = polib.pofile(str(CATALOGS / f"{language}.po"))
    return GNUTranslations(io.BytesIO(catalog.to_binary()))


def use(language: str) -> Token[str]:
    """Render in this language until reset(token)."""
    return _current.set(language)


def reset(token: Token[str]) -> None:
    _current.reset(token)


def gettext(message: str) -> str:
    return translations(_current.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_current.get()).ngettext(singular, plural, n)


def preferred(accept_language: str) -> list[str]:
    """The language ranges of an Accept-Language header, most wanted first (RFC 9110)."""
    ranges: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept_language.split(",")[:MAX_RANGES]):
        tag, _, parameters = item.strip().partition(";")
        weight = 1.0
        name, _, value = parameters.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                weight = float(value)
            except ValueError:
                weight = 0.0
        if tag and weight > 0:
            ranges.append((-weight, position, tag.strip()))
    return [tag for _, _, tag in sorted(ranges)]


def negotiate(accept_language: str) -> str:
    """The first language asked for that the pages speak: "nl-BE" is answered in "nl"
    (RFC 4647 lookup, by the primary subtag); English when none is."""
    for tag in preferred(accept_language):
        primary = tag.lower().split("-", 1)[0]
        if primary in LANGUAGES:
            return primary
    return DEFAULT


def choose(asked: str | None, remembered: str | None, accept_language: str) -> tuple[str, bool]:
    """The page's language, and whether the reader just chose it (to remember)."""
    if asked in LANGUAGES:
        return asked, True
    if remembered in LANGUAGES:
        return remembered, False
    return negotiate(accept_language), False
