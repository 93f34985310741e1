"""The tsqueries the service makes of plain words are PostgreSQL's, text for text."""

from __future__ import annotations

import itertools
import random
import re

import asyncpg
import pytest

from catalog_service import textsearch
from catalog_service.store import catalog as store

from .conftest import REAL_SPECS


async def test_the_tsqueries_made_here_are_the_servers(db: asyncpg.Connection) -> None:
    # The calibration queries pick the dialect of the server the suite runs on...
    dialect = textsearch.agreeing(await store.tsqueries(db, textsearch.calibration()))
    assert dialect is not None
    # ...and only that one: the dialects differ on some of them.
    others = [other for other in textsearch.DIALECTS if other != dialect]
    assert others and all(
        textsearch.catalog_tsquery("added", other) != textsearch.catalog_tsquery("added", dialect)
        for other in others
    )

    # Every word of the real documents, as written and lower-cased; several words
    # together, capitals, stop words of both languages, the short doubles.
    words = sorted(
        {
            word
            for path in REAL_SPECS.iterdir()
            if path.suffix in (".json", ".yaml")
            for word in re.findall(r"[A-Za-z]{1,100}", path.read_text("utf-8", "replace"))
        }
    )
    assert len(words) > 5000
    chosen = random.Random(15)
    stop_words = sorted((textsearch._STOP["english"] | textsearch._STOP["dutch"]) - {"or"})
    queries = [
        *words,
        *(word.lower() for word in words),
        *(" ".join(chosen.sample(words, chosen.randint(2, 6))) for _ in range(2000)),
        *(" ".join(chosen.sample(stop_words, chosen.randint(1, 3))) for _ in range(300)),
        *(" ".join(pair) for pair in itertools.product(["the", "de", "list"], ["pets", "of", "added"])),
        "  Pets\tstore \n",
        "a",
        "Edding",
        "offed eggs",
    ]
    theirs = await store.tsqueries(db, queries)
    made = {q: textsearch.catalog_tsquery(q, dialect) for q in queries}
    # (a query with websearch's "or" in it is left to PostgreSQL)
    assert {q for q in queries if made[q] is None} == {q for q in queries if "or" in q.lower().split()}
    differing = {q: (made[q], theirs[q]) for q in queries if made[q] is not None and made[q] != theirs[q]}
    assert differing == {}


@pytest.mark.parametrize(
    "q",
    [
        "",
        "   ",
        "or",
        "cats OR dogs",
        "pet-store",
        "-store",
        '"list all"',
        "it's",
        "oauth2",
        "v1 pets",
        "/pets/{id}",
        "Ünïcödé",
        "straße",
        "pets!",
        "x" * 101,
        " ".join(["pets"] * 17),
    ],
)
def test_what_is_not_plain_words_is_left_to_postgresql(q: str) -> None:
    assert all(textsearch.catalog_tsquery(q, dialect) is None for dialect in textsearch.DIALECTS)
