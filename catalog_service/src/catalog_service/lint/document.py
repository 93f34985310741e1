"""The document as the rules see it (references resolved) and as people read it
(a finding is reported where its node is written)."""

from __future__ import annotations

from typing import Any

from ..pointers import unescape
from .functions import MISSING
from .paths import Parts


def child(node: Any, part: str | int) -> Any:
    """``node[part]`` of a JSON value, or MISSING."""
    if isinstance(node, dict):
        return node.get(part, MISSING) if isinstance(part, str) else MISSING
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return MISSING


def _local_target(document: Any, ref: Any) -> tuple[Parts, Any] | None:
    if not isinstance(ref, str) or not ref.startswith("#"):
        return None
    node, parts = document, list[str | int]()
    for token in ref[1:].split("/")[1:] if ref not in ("#", "#/") else []:
        key = unescape(token)
        if isinstance(node, dict) and key in node:
            node = node[key]
            parts.append(key)
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
            parts.append(int(key))
        else:
            return None
    return tuple(parts), node


class Resolved:
    """Local ``$ref``s replaced by what they point at (shared, not copied); a reference
    back into its own ancestry stays a ``$ref``, as do references that point nowhere
    (listed in ``broken``)."""

    def __init__(self, document: Any) -> None:
        self.raw = document
        self.broken: list[tuple[Parts, str]] = []
        self._done: dict[int, Any] = {}
        self.root = self._resolve(document, (), set())

    def _resolve(self, node: Any, at: Parts, stack: set[int]) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#"):
                target = _local_target(self.raw, ref)
                if target is None:
                    self.broken.append(((*at, "$ref"), ref))
                    return node
                if id(target[1]) in stack or target[1] is node:
                    return node
                return self._resolve(target[1], target[0], stack)
        if not isinstance(node, dict | list):
            return node
        key = id(node)
        if key in self._done:
            return self._done[key]
        stack.add(key)
        if isinstance(node, dict):
            out: Any = {}
            self._done[key] = out
            for name, value in node.items():
                out[name] = self._resolve(value, (*at, name), stack)
        else:
            out = []
            self._done[key] = out
            out.extend(self._resolve(value, (*at, i), stack) for i, value in enumerate(node))
        stack.discard(key)
        return out

    def written(self, parts: Parts) -> Parts:
        """Where the node at ``parts`` of the resolved document is written; for one that
        does not exist, the closest written node that does."""
        node, place = self.raw, Parts()
        for part in parts:
            seen = 0
            while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < 64:
                target = _local_target(self.raw, node["$ref"])
                if target is None:
                    break
                place, node = target
                seen += 1
            node = child(node, part)
            if node is MISSING:
                return place
            place = (*place, part)
        # A node that is itself a reference is reported where the reference is written.
        return place
