"""PostgreSQL's full-text match and ``ts_rank``, over operations held in memory.

Pure code: no I/O. A search of the operations is ``search_vector @@ q`` ordered by
``ts_rank(search_vector, q) DESC`` and then by API name, path and method. This module
answers the same question from postings (which operations hold which lexeme, with
the weights of its positions) so that a search needs no query, with the same
matches, the same order and the same total as PostgreSQL's.

PostgreSQL still turns the reader's words into a tsquery (its parser, stemmers and
stop words are the reference); only the query's *shape* is handled here: lexemes
joined by ``&`` and ``|``, with parentheses, under an ``|`` at the top (what
``catalog_tsquery`` makes of plain words in three languages). Anything else (a
phrase, a negation, a prefix, weights, an ``&`` at the top, ranked by another
formula) is left to PostgreSQL: ``parse`` answers None.

``ts_rank`` with the default weights and no normalisation ranks with
``calc_rank_or`` (src/backend/utils/adt/tsrank.c): for each distinct lexeme of the
query, sorted by its bytes, that an operation holds, it adds a term that depends
only on the weights of the lexeme's positions, and divides by the number of distinct
lexemes. The arithmetic is C's: single precision, except for the division by
1.64493406685 (a double), so each step is rounded to float32 here as it is there.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

Ordinals = npt.NDArray[np.int32]
Terms = npt.NDArray[np.float64]

# ts_rank's default weights of D, C, B and A, as the float they are in C.
_WEIGHTS = {"D": 0.1, "C": 0.2, "B": 0.4, "A": 1.0}
# sum(1/i^2) for i >= 1, as tsrank.c writes it.
_ZETA2 = 1.64493406685


def _f32(value: float) -> float:
    result: float = struct.unpack("f", struct.pack("f", value))[0]
    return result


@lru_cache(maxsize=4096)
def term(weights: str) -> float:
    """What one lexeme adds to an operation's rank, given the weights of its positions
    in position order ("" when it has none: one position of weight D)."""
    res_j, w_max, j_max = 0.0, -1.0, 0
    for j, letter in enumerate(weights or "D"):
        w = _f32(_WEIGHTS[letter])
        res_j = _f32(res_j + _f32(w / ((j + 1) * (j + 1))))
        if w > w_max:
            w_max, j_max = w, j
    return _f32(_f32(w_max + res_j) - _f32(w_max / ((j_max + 1) * (j_max + 1)))) / _ZETA2


# -- the query's shape -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Node:
    """``|`` or ``&`` over operands (lexemes, as str) and further nodes."""

    operator: str
    operands: tuple[Node | str, ...]


@dataclass(frozen=True, slots=True)
class Query:
    root: Node | str | None  # None: no lexeme at all (nothing matches)
    lexemes: tuple[str, ...]  # distinct, sorted by their bytes (ts_rank's order)


_TOKEN = re.compile(r"\s*(?:'((?:[^']|'')*)'(:[A-Za-z*]*)?|([&|()!<]))")


def parse(text: str) -> Query | None:
    """A tsquery's text output as a Query, or None for a shape left to PostgreSQL."""
    tokens: list[str | tuple[str]] = []  # operators as str, lexemes as 1-tuples
    position = 0
    while position < len(text.rstrip()):
        found = _TOKEN.match(text, position)
        if found is None:
            return None
        lexeme, flags, operator = found.groups()
        if operator is not None:
            if operator in "!<":  # negation, phrase
                return None
            tokens.append(operator)
        elif flags:  # a prefix match or weights
            return None
        else:
            tokens.append((lexeme.replace("''", "'"),))
        position = found.end()
    if not tokens:
        return Query(None, ())
    root, rest = _expression(tokens, "|")
    if rest or root is None:
        return None  # malformed
    if isinstance(root, Node) and root.operator == "&" and not _or_on_top(tokens):
        return None  # ranked by calc_rank_and
    lexemes = sorted(set(_lexemes(root)), key=lambda lexeme: lexeme.encode())
    return Query(root, tuple(lexemes))


def _expression(
    tokens: list[str | tuple[str]], operator: str
) -> tuple[Node | str | None, list[str | tuple[str]]]:
    """``|`` binds loosest, then ``&``, then parentheses."""
    operands: list[Node | str] = []
    while True:
        if operator == "|":
            operand, tokens = _expression(tokens, "&")
        else:
            operand, tokens = _primary(tokens)
        if operand is None:
            return None, tokens
        operands.append(operand)
        if not tokens or tokens[0] != operator:
            break
        tokens = tokens[1:]
    # The same operand twice ('user' | 'user' | 'user': a word all three languages
    # leave alone) matches what it matches once; ranking counts lexemes, not operands.
    unique = tuple(dict.fromkeys(operands))
    if len(unique) == 1:
        return unique[0], tokens
    return Node(operator, unique), tokens


def _primary(tokens: list[str | tuple[str]]) -> tuple[Node | str | None, list[str | tuple[str]]]:
    if not tokens:
        return None, tokens
    first = tokens[0]
    if isinstance(first, tuple):
        return first[0], tokens[1:]
    if first == "(":
        inner, rest = _expression(tokens[1:], "|")
        if inner is None or not rest or rest[0] != ")":
            return None, rest
        return inner, rest[1:]
    return None, tokens


def _or_on_top(tokens: list[str | tuple[str]]) -> bool:
    depth = 0
    for token in tokens:
        depth += {"(": 1, ")": -1}.get(token, 0) if isinstance(token, str) else 0
        if token == "|" and depth == 0:
            return True
    return False


def _lexemes(node: Node | str) -> list[str]:
    if isinstance(node, str):
        return [node]
    return [lexeme for operand in node.operands for lexeme in _lexemes(operand)]


# -- evaluation --------------------------------------------------------------------------


_EMPTY: Ordinals = np.zeros(0, dtype=np.int32)
# Postings this share of the operations or more are worked on as arrays over every
# operation (a mask, a rank each), not sorted and searched: for a common word of
# the corpus (50,000 postings of 600,000 operations) 1.5 ms instead of 4.5, on the
# event loop that 49 other readers wait on.
DENSE = 64


def _dense(postings_held: int, size: int | None) -> bool:
    return size is not None and postings_held * DENSE >= size


def matches(
    node: Node | str, postings: dict[str, tuple[Ordinals, Terms]], size: int | None = None
) -> Ordinals:
    """The ordinals (ascending) of the operations the query matches; ``size``: how many
    operations there are (every ordinal is below it), when known."""
    if isinstance(node, str):
        return postings[node][0] if node in postings else _EMPTY
    parts = [matches(operand, postings, size) for operand in node.operands]
    if node.operator == "|":
        if _dense(sum(len(part) for part in parts), size):
            assert size is not None
            mask = np.zeros(size, dtype=bool)
            for part in parts:
                mask[part] = True
            return np.flatnonzero(mask).astype(np.int32)
        joined = np.sort(np.concatenate(parts))
        if len(joined) < 2:
            return joined
        return joined[np.concatenate(([True], joined[1:] != joined[:-1]))]
    result = parts[0]
    for part in parts[1:]:
        result = np.intersect1d(result, part, assume_unique=True)
    return result


def ranks(
    found: Ordinals,
    lexemes: Sequence[str],
    postings: dict[str, tuple[Ordinals, Terms]],
    size: int | None = None,
) -> npt.NDArray[np.float32]:
    """ts_rank of each operation in ``found``, as float32 (as PostgreSQL's float4);
    ``size`` as for ``matches``."""
    held_postings = [postings[lexeme] for lexeme in lexemes if lexeme in postings]
    if _dense(sum(len(ordinals) for ordinals, _ in held_postings), size):
        # Every operation's rank at once, each lexeme added where it is held: the
        # same additions, in the same order, as below.
        assert size is not None
        every = np.zeros(size, dtype=np.float32)
        for ordinals, terms in held_postings:
            every[ordinals] = (every[ordinals].astype(np.float64) + terms).astype(np.float32)
        rank = every[found]
    else:
        rank = np.zeros(len(found), dtype=np.float32)
        for ordinals, terms in held_postings:  # in ts_rank's order: float addition is not associative
            if ordinals is found:  # a single lexeme: every match holds it
                rank = (rank.astype(np.float64) + terms).astype(np.float32)
                continue
            at = np.searchsorted(ordinals, found)
            inside = at < len(ordinals)
            held = np.zeros(len(found), dtype=bool)
            held[inside] = ordinals[at[inside]] == found[inside]
            # float + double in double, stored back into a float: as C does.
            rank[held] = (rank[held].astype(np.float64) + terms[at[held]]).astype(np.float32)
    if lexemes:
        rank = (rank / np.float32(len(lexemes))).astype(np.float32)
    return rank


def ordered(found: Ordinals, rank: npt.NDArray[np.float32], first: int | None = None) -> Ordinals:
    """``found`` by rank (highest first), then by ordinal (name, path, method); only
    the ``first`` so many when given (a page needs no more)."""
    if first is not None and first < len(found) // 2:
        # Only what ranks at least as high as the first-th can be among the first:
        # found in linear time, and those sorted.
        at_least = np.partition(rank, len(rank) - first)[len(rank) - first]
        kept = rank >= at_least
        found, rank = found[kept], rank[kept]
    return found[np.lexsort((found, -rank))][:first]
