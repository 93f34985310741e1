"""Spectral's JSONPath, evaluated by python-jsonpath.

Spectral's ``given`` expressions are JSONPath-Plus: filters are JavaScript
(``@property.match(/re/i)``, ``@.parameters.length > 0``), ``[name]`` selects a
member, and a trailing ``~`` selects keys instead of values. python-jsonpath has each
of these under another spelling (``#`` for the current key, ``=~`` for a regex,
``length()``, ``[~?filter]`` for keys); this module rewrites one dialect into the other
and leaves the evaluating to the library.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
import time
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import jsonpath
from jsonpath.match import JSONPathMatch
from jsonpath.segments import JSONPathRecursiveDescentSegment
from jsonpath.selectors import Filter, KeysFilter, NameSelector

Parts = tuple[str | int, ...]

_KEY_PREFIX = jsonpath.DEFAULT_ENV.keys_selector_token


class PathError(ValueError):
    """A ``given`` the linter cannot read."""


class OutOfTime(Exception):
    """The document took longer to lint than it may."""


# The time (time.monotonic()) by which the evaluation in progress must be done.
_deadline: contextvars.ContextVar[float] = contextvars.ContextVar("deadline", default=float("inf"))


def on_time() -> None:
    """Raise OutOfTime when the linting in progress is past its deadline."""
    if time.monotonic() > _deadline.get():
        raise OutOfTime


_MATCH = re.compile(r"\.match\(\s*/((?:\\.|[^/\\])*)/([a-z]*)\s*\)")
_LENGTH = re.compile(r"(@(?:\.[A-Za-z_$][\w$-]*)+)\.length\b")


def _filter(expression: str) -> str:
    """A JSONPath-Plus filter (JavaScript) as a python-jsonpath filter."""
    out = expression.strip()
    if out.startswith("(") and out.endswith(")"):
        out = out[1:-1]
    out = out.replace("@property", "#")
    # JavaScript's String.match searches; python-jsonpath's =~ matches the whole value.
    out = _MATCH.sub(lambda m: f" =~ /(?s:.*?)(?:{m.group(1)})(?s:.*)/{m.group(2)})", out)
    # Every `X =~` produced above needs its opening parenthesis before X.
    out = re.sub(r"(!?)(#|@(?:\.[A-Za-z_$][\w$-]*)*)( =~ )", r"\1(\2\3", out)
    out = _LENGTH.sub(r"length(\1)", out)
    return out


def _bracket_end(text: str, start: int) -> int:
    """The index of the ``]`` closing the ``[`` at ``start``."""
    depth, i, quote, regex = 0, start, "", False
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = ""
        elif regex:
            if char == "\\":
                i += 1
            elif char == "/":
                regex = False
        elif char in "'\"":
            quote = char
        elif char == "/" and text[i - 1] == "(":
            regex = True
        elif char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise PathError(f"unbalanced brackets in {text!r}")


def _names(content: str) -> str:
    names = [name.strip() for name in content.split(",")]
    quoted = []
    for name in names:
        if name == "*" or re.fullmatch(r"-?\d+(:-?\d*)?(:-?\d*)?", name) or name[:1] in "'\"":
            quoted.append(name)
        else:
            quoted.append("'" + name.replace("\\", "\\\\").replace("'", "\\'") + "'")
    return ", ".join(quoted)


_KEY_CONDITION = re.compile(
    r"(?:@property\s*&&\s*)?@property\.match\(\s*/((?:\\.|[^/\\])*)/([a-z]*)\s*\)\s*(?:&&|$)"
)


def _key_guard(expression: str) -> re.Pattern[str] | None:
    """A filter that starts with ``@property.match(/re/)`` (and has no ``||``) selects
    only members whose name the regex finds: the names can be sifted before the
    filter runs on each member (the ADR ruleset's `$.paths..[?(...)]` visits every node)."""
    inner = expression.strip()
    if inner.startswith("(") and inner.endswith(")"):
        inner = inner[1:-1].strip()
    found = _KEY_CONDITION.match(inner)
    if "||" in inner or found is None:
        return None
    flags = re.I if "i" in found.group(2) else 0
    try:
        return re.compile(found.group(1), flags | (re.S if "s" in found.group(2) else 0))
    except re.error:
        return None


@lru_cache(maxsize=512)
def translate(given: str) -> str:
    """``given`` in python-jsonpath's syntax."""
    return _translated(given)[0]


@lru_cache(maxsize=512)
def _translated(given: str) -> tuple[str, tuple[re.Pattern[str] | None, ...]]:
    """``given`` in python-jsonpath's syntax, and for each of its filters in order, the
    regex a member's name must match to pass it (None: no such condition)."""
    text = given.strip()
    guards: list[re.Pattern[str] | None] = []
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "[":
            end = _bracket_end(text, i)
            content = text[i + 1 : end].strip()
            keys = end + 1 < len(text) and text[end + 1] == "~"
            if out and out[-1] == "." and not (len(out) > 1 and out[-2] == "."):
                out.pop()  # `.[x]` is `[x]`
            if content.startswith("?"):
                out.append(("[~?" if keys else "[?") + _filter(content[1:]) + "]")
                guards.append(_key_guard(content[1:]))
            elif keys and content == "*":
                out.append("[~]")
            else:
                out.append("[" + _names(content) + "]")
                if keys:
                    raise PathError(f"keys of named members are not supported: {given!r}")
            i = end + (2 if keys else 1)
        elif char == "~":
            if text[i - 1] == "*":
                out[-1] = "~"
            else:
                raise PathError(f"a key selector here is not supported: {given!r}")
            i += 1
        else:
            out.append(char)
            i += 1
    return "".join(out), tuple(guards)


class _Match(JSONPathMatch):
    """A match that does not spell out its path as a string: the linter reads
    ``parts`` only, and building the string was a quarter of the time."""

    __slots__ = ()

    def new_child(self, obj: object, key: int | str) -> JSONPathMatch:
        return _Match(
            filter_context=self._filter_context,
            obj=obj,
            parent=self,
            parts=(*self.parts, key),
            path="",
            root=self.root,
        )


# Per evaluation of a ruleset: the containers under a node (by identity), in document
# order, found once and shared by every rule that descends from that node.
_descendants: contextvars.ContextVar[dict[int, list[tuple[Any, Parts]]] | None] = contextvars.ContextVar(
    "descendants", default=None
)


# ... and the nodes each beginning of a path selects ("$..responses" is where four rules
# of the ADR ruleset start).
_prefixes: contextvars.ContextVar[dict[str, list[JSONPathMatch]] | None] = contextvars.ContextVar(
    "prefixes", default=None
)


@contextlib.contextmanager
def shared_descent(seconds: float = float("inf")) -> Iterator[None]:
    """Within this block, evaluations share what they find on the same documents, and
    must be done within ``seconds`` (else OutOfTime)."""
    tokens = _descendants.set({}), _prefixes.set({}), _named.set({})
    deadline = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _descendants.reset(tokens[0])
        _prefixes.reset(tokens[1])
        _named.reset(tokens[2])
        _deadline.reset(deadline)


def _under(node: JSONPathMatch) -> list[tuple[Any, Parts]]:
    """``node`` and every object and array under it, each once, in document order, as
    (value, path): a match object is made only for what a selector then looks at."""
    cache = _descendants.get()
    found = cache.get(id(node.obj)) if cache is not None else None
    if found and found[0][1] == node.parts:
        return found
    out = [(value, parts) for _, value, parts in _walk([node])]
    if cache is not None:
        cache[id(node.obj)] = out
    return out


# ... and, under such a node, which objects have a member of a name.
_named: contextvars.ContextVar[dict[tuple[int, str], list[tuple[Any, Parts]]] | None] = (
    contextvars.ContextVar("named", default=None)
)


def _holders(node: JSONPathMatch, name: str) -> list[tuple[Any, Parts]]:
    """The objects under ``node`` (itself included) with a member ``name``."""
    cache = _named.get()
    found = cache.get((id(node.obj), name)) if cache is not None else None
    if found is not None:
        return found
    holders = [(value, parts) for value, parts in _under(node) if isinstance(value, dict) and name in value]
    if cache is not None:
        cache[(id(node.obj), name)] = holders
    return holders


def _match(node: JSONPathMatch, value: Any, parts: Parts) -> _Match:
    return _Match(
        filter_context=node.filter_context(), obj=value, parent=None, parts=parts, path="", root=node.root
    )


class _DescendOnce(JSONPathRecursiveDescentSegment):
    """``..`` over a document whose references are resolved into shared nodes: each
    object or array is descended into once per evaluation, whatever the number of
    paths that reach it (a node has one written place, and it is reported there), and
    without a depth limit (no recursion)."""

    def resolve(self, nodes: Any) -> Any:
        nodes = list(nodes)
        if all(isinstance(selector, NameSelector) for selector in self.selectors):
            yield from self._members(nodes)
            return
        guards = [selector.names if isinstance(selector, _KeyGuard) else None for selector in self.selectors]
        for node, value, parts in _descendants_of(nodes):
            if None not in guards and not (
                isinstance(value, dict)
                and any(isinstance(key, str) and guard.search(key) for guard in guards for key in value)  # type: ignore[union-attr]
            ):
                continue  # no member's name passes any filter: no match here
            descendant = _match(node, value, parts)
            for selector in self.selectors:
                yield from selector.resolve(descendant)

    def _members(self, nodes: list[JSONPathMatch]) -> Any:
        """``..name``: from one node, among the objects under it that have the name
        (found once per run); from many nodes, on one walk over what is under them all."""
        names = [str(getattr(selector, "name", "")) for selector in self.selectors]
        if len(nodes) == 1:
            for name in names:
                for value, parts in _holders(nodes[0], name):
                    yield _match(nodes[0], value[name], (*parts, name))
            return
        for node, value, parts in _descendants_of(nodes):
            if isinstance(value, dict):
                for name in names:
                    if name in value:
                        yield _match(node, value[name], (*parts, name))


def _descendants_of(nodes: list[JSONPathMatch]) -> Iterator[tuple[JSONPathMatch, Any, Parts]]:
    """(the node it is under, value, path) of every object and array under ``nodes``,
    each once: one node's are remembered for the rules that start there too; many
    nodes' (whose parts often overlap through references) are walked together."""
    if len(nodes) == 1:
        for value, parts in _under(nodes[0]):
            yield nodes[0], value, parts
        return
    for index, value, parts in _walk(nodes):
        yield nodes[index], value, parts


def _walk(starts: list[JSONPathMatch]) -> Iterator[tuple[int, Any, Parts]]:
    """(which start, value, path) of every object and array under ``starts``, each once
    (a node shared through references is walked the first time it is met), in
    document order; without recursion, and within the run's deadline."""
    seen: set[int] = set()
    for index, start in enumerate(starts):
        stack: list[tuple[Any, Parts]] = [(start.obj, tuple(start.parts))]
        while stack:
            value, parts = stack.pop()
            if id(value) in seen:
                continue
            seen.add(id(value))
            if not len(seen) % 4096:
                on_time()
            yield index, value, parts
            if isinstance(value, dict):
                items: Any = value.items()
            elif isinstance(value, list):
                items = enumerate(value)
            else:
                continue
            children = [(item, (*parts, key)) for key, item in items if isinstance(item, dict | list)]
            children.reverse()
            stack.extend(children)


class _KeyGuard:
    """A filter selector whose members are first sifted by name (see _key_guard)."""

    def __init__(self, selector: Any, names: re.Pattern[str]) -> None:
        self.selector = selector
        self.names = names

    def resolve(self, node: JSONPathMatch) -> Any:
        value = node.obj
        if not isinstance(value, dict):
            return  # an index is a number: a name's regex never matches it
        keys = [key for key in value if isinstance(key, str) and self.names.search(key)]
        if not keys:
            return
        if len(keys) != len(value):
            node = _Match(
                filter_context=node.filter_context(),
                obj={key: value[key] for key in keys},
                parent=node.parent,
                parts=node.parts,
                path="",
                root=node.root,
            )
        yield from self.selector.resolve(node)


def _guarded(selectors: tuple[Any, ...], guards: list[re.Pattern[str] | None]) -> tuple[Any, ...]:
    out = []
    for selector in selectors:
        if isinstance(selector, Filter | KeysFilter):
            guard = guards.pop(0) if guards else None
            out.append(_KeyGuard(selector, guard) if guard is not None else selector)
        else:
            out.append(selector)
    return tuple(out)


@lru_cache(maxsize=512)
def compiled(given: str) -> Any:
    text, guards = _translated(given)
    try:
        path = jsonpath.compile(text)
    except jsonpath.JSONPathError as exc:
        raise PathError(f"cannot read the JSONPath {given!r}: {exc}") from exc
    if not isinstance(path, jsonpath.JSONPath) or path.pseudo_root:
        raise PathError(f"cannot use the JSONPath {given!r}: one path from the root is needed")
    pending = list(guards)
    segments: list[Any] = []
    for segment in path.segments:
        selectors = _guarded(segment.selectors, pending)
        if isinstance(segment, JSONPathRecursiveDescentSegment):
            segments.append(_DescendOnce(env=segment.env, token=segment.token, selectors=selectors))
        else:
            segment.selectors = selectors
            segments.append(segment)
    path.segments = tuple(segments)
    return path


def matches(given: str, document: Any) -> Iterator[tuple[Parts, Any, bool]]:
    """(path, value, is_key) of every node ``given`` selects in ``document``. A key
    selected (``~``) has the path of its member and its own name as the value."""
    matches: Any = [_Match(filter_context={}, obj=document, parent=None, path="$", parts=(), root=document)]
    cache = _prefixes.get()
    prefix = str(id(document))
    for segment in compiled(given).segments:
        prefix += str(segment)
        if cache is None:
            matches = segment.resolve(matches)
        elif prefix in cache:
            matches = cache[prefix]
        else:
            matches = cache[prefix] = list(segment.resolve(matches))
    for match in matches:
        parts: Parts = tuple(match.parts)
        last = parts[-1] if parts else None
        if isinstance(last, str) and isinstance(match.obj, str) and last == _KEY_PREFIX + match.obj:
            yield (*parts[:-1], match.obj), match.obj, True
            continue
        yield parts, match.obj, False
