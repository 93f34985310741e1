"""Searches of the operations from memory: PostgreSQL's matches, order and totals."""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import time
from typing import Any

import asyncpg
import numpy as np
import orjson
import pytest
from aiohttp import web

from catalog_service import textsearch
from catalog_service.indexes import operations as operation_index
from catalog_service.indexes import ranking
from catalog_service.keys import OPERATION_INDEX, POOL
from catalog_service.settings import Settings
from catalog_service.store import catalog as store

from .conftest import REAL_SPECS, collected, register
from .upstream import Upstream


async def postgresqls_page(db: Any, **search: Any) -> bytes:
    rows, total = await store.search_operations(db, **search)
    items = [
        {key: row[key] for key in ("project", "method", "path", "operation_id", "summary", "deprecated")}
        for row in rows
    ]
    return orjson.dumps({"items": items, "total": total})


async def from_memory(app: web.Application, **search: Any) -> bytes | None:
    page = await app[OPERATION_INDEX].page(**search)
    if page is None:
        return None
    items, total = page
    return orjson.dumps({"items": [orjson.loads(item) for item in items], "total": total})


async def index_current(app: web.Application, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while await app[OPERATION_INDEX].page(q=None, method=None, project=None, limit=1, offset=0) is None:
        assert time.monotonic() < deadline, "the operation index did not catch up"
        await asyncio.sleep(0.05)


# Shapes of query left to PostgreSQL: phrases (quoted, or a word the parser splits),
# a negation, words that are stop words in English and Dutch alike (an & at the top,
# ranked by another formula).
LEFT_TO_POSTGRESQL = ['"list all"', "GET /pets/{id}", "it's", "o'reilly", "pet -store", "in is"]


async def test_searches_from_memory_are_postgresqls_searches(
    make_client: Any,
    settings: Settings,
    admin: dict[str, str],
    aiohttp_server: Any,
    db: asyncpg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    up = Upstream()
    server = await aiohttp_server(up.app)
    client = await make_client(
        dataclasses.replace(settings, workers=2, allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),))
    )
    names = []
    for i, path in enumerate(sorted(p for p in REAL_SPECS.iterdir() if p.suffix in (".json", ".yaml"))):
        names.append(f"real-{i:02d}")
        url = str(server.make_url(up.serve(path.name, path.read_bytes(), "application/octet-stream")))
        await register(client, admin, names[-1], url)
    for name in names:
        await collected(client, name, timeout=120)
    app = client.server.app
    await index_current(app)
    operations = await db.fetchval(
        "SELECT count(*) FROM operations o JOIN projects p ON p.published_document_id = o.document_id"
    )
    assert operations > 400

    # Every word of the summaries (common and rare), several words, other languages,
    # stop words, punctuation only, quotes and what websearch_to_tsquery makes of "or".
    words = [
        row["word"]
        for row in await db.fetch(
            """SELECT DISTINCT lower(w) AS word FROM operations, regexp_split_to_table(summary, '[^[:alpha:]]+') AS w
               WHERE length(w) > 1 ORDER BY 1"""
        )
    ]
    assert len(words) > 300
    queries = [
        *words,
        "list users",
        "create or delete",
        "betalingen ophalen",
        "de",
        "the",
        "!!!",
        "Ünïcödé straße",
        "get (user)",
    ]
    answered = 0
    # Searches arriving together: the words PostgreSQL makes the tsquery of become
    # tsqueries in one round trip, each search still answered for its own words.
    for first in range(0, len(queries), 40):
        together = [
            (q, *((100, 0) if i % 3 else (7, i % 5)))
            for i, q in enumerate(queries[first : first + 40], first)
        ]
        found = await asyncio.gather(
            *(
                from_memory(app, q=q, method=None, project=None, limit=lim, offset=off)
                for q, lim, off in together
            )
        )
        for (q, limit, offset), page in zip(together, found, strict=True):
            expected = await postgresqls_page(db, q=q, method=None, project=None, limit=limit, offset=offset)
            assert page is not None, q
            assert page == expected, q
            answered += orjson.loads(expected)["total"] > 0
    assert answered > 300  # most of them found something to rank

    # Plain words are made a tsquery here, and PostgreSQL's own tsquery of each is
    # checked a moment later: none differed (every page above was PostgreSQL's), so
    # new plain words are still answered without PostgreSQL, even while every
    # connection of the pool is taken.
    index = app[OPERATION_INDEX]
    deadline = time.monotonic() + 10
    while index._unchecked:
        assert time.monotonic() < deadline, "the tsqueries made here were not checked"
        await asyncio.sleep(0.05)
    pool = app[POOL]
    held = [await pool.acquire() for _ in range(pool.get_max_size())]
    try:
        at_once = await asyncio.wait_for(
            from_memory(app, q="Listed Users", method=None, project=None, limit=5, offset=0), 2
        )
    finally:
        for conn in held:
            await pool.release(conn)
    expected = await postgresqls_page(db, q="Listed Users", method=None, project=None, limit=5, offset=0)
    assert at_once == expected and orjson.loads(expected)["total"] > 0

    # Words PostgreSQL makes the tsquery of (not plain words: a digit) asked for while
    # a round trip is out set out at once, beside it (here both wait for a connection
    # of the pool); a reader that goes away takes nothing from another waiting for
    # the same words.
    def out() -> int:
        return [task.get_name() for task in asyncio.all_tasks()].count("operation-index-tsqueries")

    held = [await pool.acquire() for _ in range(pool.get_max_size())]
    try:
        leaving = asyncio.create_task(
            from_memory(app, q="zebra2 habitat", method=None, project=None, limit=5, offset=0)
        )
        staying = asyncio.create_task(
            from_memory(app, q="zebra2 habitat", method=None, project=None, limit=5, offset=0)
        )
        for _ in range(5):
            await asyncio.sleep(0)
        later = asyncio.create_task(
            from_memory(app, q="quantum ledger pets3", method=None, project=None, limit=5, offset=0)
        )
        for _ in range(5):
            await asyncio.sleep(0)
        assert out() == 2
        leaving.cancel()
    finally:
        for conn in held:
            await pool.release(conn)
    for task, q in [(staying, "zebra2 habitat"), (later, "quantum ledger pets3")]:
        assert await task == await postgresqls_page(db, q=q, method=None, project=None, limit=5, offset=0)
    assert leaving.cancelled()

    # Bit for bit the ranks PostgreSQL gives (float4), not merely the same order here:
    # a tie one ulp apart orders another catalog differently.
    snapshot = index._snapshot
    assert snapshot is not None
    compared = 0
    for q in words:
        query = await index._query(q)
        assert query is not None and query.root is not None, q
        postings = snapshot.postings(index._vocabulary, query.lexemes)
        found = ranking.matches(query.root, postings)
        ours = ranking.ranks(found, query.lexemes, postings).tolist()
        # The same, worked on as arrays over every operation (as common words are).
        with monkeypatch.context() as dense:
            dense.setattr(ranking, "DENSE", 10**9)
            assert ranking.matches(query.root, postings, len(snapshot)).tolist() == found.tolist(), q
            assert ranking.ranks(found, query.lexemes, postings, len(snapshot)).tolist() == ours, q
        theirs = await db.fetch(
            """SELECT ts_rank(o.search_vector, catalog_tsquery($1)) AS rank
               FROM operations o JOIN projects p ON p.published_document_id = o.document_id
               WHERE o.search_vector @@ catalog_tsquery($1) ORDER BY p.name, o.path, o.method""",
            q,
        )
        assert ours == [row["rank"] for row in theirs], q
        compared += len(ours)
    assert compared > 3000

    # Were the server's stemmers not the service's after all (here: the other dialect
    # for a word they stem apart), the first search is answered with the tsquery made
    # here, and its check sends every further search's words to PostgreSQL and lets
    # the pages cached go: the next searches for the same words, over HTTP or from
    # memory, are PostgreSQL's.
    (wrong,) = [dialect for dialect in textsearch.DIALECTS if dialect != index._dialect]
    index._dialect = wrong
    search = {"q": "Added", "method": None, "project": None, "limit": 20, "offset": 0}
    expected = await postgresqls_page(db, **search)
    assert await from_memory(app, **search) != expected
    response = await client.get("/api/operations", params={"q": "Added", "limit": "20"})
    assert await response.read() != expected
    deadline = time.monotonic() + 10
    while index._dialect is not None:
        assert time.monotonic() < deadline, "the tsquery made here was not found wrong"
        await asyncio.sleep(0.05)
    response = await client.get("/api/operations", params={"q": "Added", "limit": "20"})
    assert response.status == 200 and await response.read() == expected
    await index_current(app)  # (the pages cached were let go: the index reads again)
    assert await from_memory(app, **search) == expected
    for q in ["pets", "list users"]:
        search = {"q": q, "method": None, "project": None, "limit": 10, "offset": 0}
        assert await from_memory(app, **search) == await postgresqls_page(db, **search)

    # Filters, alone and with a search, and pages further down: from a search's
    # matches ranked already (the first two kept), or ranked again past them.
    monkeypatch.setattr(operation_index, "KEPT_IN_ORDER", 2)
    for q in [None, "get", "list", "user"]:
        for method in [None, "GET", "post", "PATCH", "TRACE"]:
            for project in [None, "real-03", "real-19", "nothing"]:
                for limit, offset in [(2, 0), (1, 1), (3, 2), (100, 0), (50, 40)]:
                    search = {"q": q, "method": method, "project": project, "limit": limit, "offset": offset}
                    expected = await postgresqls_page(db, **search)
                    assert await from_memory(app, **search) == expected, search

    for q in LEFT_TO_POSTGRESQL:
        assert await from_memory(app, q=q, method=None, project=None, limit=10, offset=0) is None, q
        response = await client.get("/api/operations", params={"q": q, "limit": "10"})
        expected = await postgresqls_page(db, q=q, method=None, project=None, limit=10, offset=0)
        assert response.status == 200 and await response.read() == expected, q

    # Over HTTP, from memory or not, the same answers.
    for q in ["user", "pet -store", "betalingen"]:
        response = await client.get("/api/operations", params={"q": q, "limit": "5"})
        assert response.status == 200
        expected = await postgresqls_page(db, q=q, method=None, project=None, limit=5, offset=0)
        assert await response.read() == expected

    # A document that goes is gone from the next search, and from the index once it
    # has caught up; one that comes is searchable.
    gone = orjson.loads(await postgresqls_page(db, q="get", method=None, project=None, limit=1, offset=0))
    name = gone["items"][0]["project"]
    held = await db.fetchval(
        """SELECT count(*) FROM operations o JOIN projects p ON p.published_document_id = o.document_id
           WHERE p.name = $1 AND o.search_vector @@ catalog_tsquery('get')""",
        name,
    )
    await app[POOL].execute("DELETE FROM projects WHERE name = $1", name)
    await asyncio.sleep(0.2)  # the NOTIFY travels to the listener
    body = await (await client.get("/api/operations", params={"q": "get", "limit": "1000"})).json()
    assert name not in {item["project"] for item in body["items"]}
    assert body["total"] == gone["total"] - held > 0
    await index_current(app)
    search = {"q": "get", "method": None, "project": None, "limit": 1000, "offset": 0}
    assert await from_memory(app, **search) == await postgresqls_page(db, **search)


@pytest.mark.parametrize(
    ("text", "lexemes"),
    [
        ("'user' | 'user' | 'user'", ("user",)),
        ("'address' | 'addres' | 'address'", ("addres", "address")),
        ("'list' & 'user' | 'list' & 'user' | 'list' & 'users'", ("list", "user", "users")),
        ("( 'a' | 'b' ) & 'c' | 'd'", ("a", "b", "c", "d")),
        ("'get' & 'user' | 'get' & 'user'", ("get", "user")),
        ("'it''s' | 'it'", ("it", "it's")),
        ("", ()),
    ],
)
def test_the_shapes_of_query_answered_from_memory(text: str, lexemes: tuple[str, ...]) -> None:
    query = ranking.parse(text)
    assert query is not None and query.lexemes == lexemes


@pytest.mark.parametrize(
    "text",
    ["'list' <-> 'all'", "'pet' & !'store'", "'in' & 'is'", "'use':*", "'user':A", "'a' & ( 'b'", "'a' |"],
)
def test_the_shapes_of_query_left_to_postgresql(text: str) -> None:
    assert ranking.parse(text) is None


def test_the_first_of_an_order_are_the_order_s_first_ties_and_all() -> None:
    generator = np.random.default_rng(7)
    for size in (1, 2, 10, 1000, 20_000):
        found = np.sort(generator.choice(10 * size, size=size, replace=False)).astype(np.int32)
        # Few distinct ranks: ties everywhere, and at the edge of every page.
        rank = generator.choice(np.array([0.1, 0.2, 0.2, 0.3, 0.05], dtype=np.float32), size=size)
        everything = ranking.ordered(found, rank)
        assert sorted(everything.tolist()) == found.tolist()
        for first in (1, 3, 20, 100, 117, size // 2 - 1, size):
            if first >= 1:
                assert ranking.ordered(found, rank, first=first).tolist() == everything[:first].tolist()


def test_postings_worked_on_over_every_operation_match_and_rank_as_sorted_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    generator = np.random.default_rng(64)
    size = 5000
    roots: list[ranking.Node | str] = [
        "a",
        ranking.Node("|", ("a", "b", "c")),
        ranking.Node("|", (ranking.Node("&", ("a", "b")), "d")),
    ]
    for held in (1, 10, 100, 1000, 4000):
        postings = {
            lexeme: (
                np.sort(generator.choice(size, size=held, replace=False)).astype(np.int32),
                generator.choice(
                    np.array([ranking.term(w) for w in ("", "A", "AB", "DDC", "BA")]), size=held
                ),
            )
            for lexeme in ("a", "b", "c", "d")
        }
        for root in roots:
            lexemes = ("a",) if isinstance(root, str) else ("a", "b", "c", "d")
            found = ranking.matches(root, postings)
            rank = ranking.ranks(found, lexemes, postings).tolist()
            some = found[::3]
            some_rank = ranking.ranks(some, lexemes, postings).tolist()
            for dense in (0, 10**9):  # never, always
                monkeypatch.setattr(ranking, "DENSE", dense)
                assert ranking.matches(root, postings, size).tolist() == found.tolist()
                assert ranking.ranks(found, lexemes, postings, size).tolist() == rank
                assert ranking.ranks(some, lexemes, postings, size).tolist() == some_rank
