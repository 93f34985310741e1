"""Real single-file documents taken apart into many files, as teams write them: every
path item and every component in a file of its own, in folders, JSON and YAML mixed,
joined by relative references (``../``) — and the means to check that a bundle holds
what the original held."""

from __future__ import annotations

import json
import posixpath
import re
from typing import Any
from urllib.parse import unquote

import yaml

SECTIONS_2 = ("definitions", "parameters", "responses")


def _parts(fragment: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in unquote(fragment).split("/")[1:]]


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def split(document: dict[str, Any]) -> dict[str, bytes]:
    """The files of the document (paths relative to the root file, openapi.yaml)."""
    document = json.loads(json.dumps(document))
    swagger = "swagger" in document
    holder = document if swagger else document.get("components", {})
    sections = [s for s in (SECTIONS_2 if swagger else holder) if isinstance(holder.get(s), dict)]
    # Every component gets a file: components/<section>/<name>.json or .yaml.
    files: dict[str, Any] = {}
    # Where each part goes: its pointer's first parts -> its file.
    home: dict[tuple[str, ...], str] = {}
    prefix = () if swagger else ("components",)
    for i, (section, name) in enumerate((s, n) for s in sections for n in holder[s]):
        safe = re.sub(r"[^A-Za-z0-9_-]", "_", name)
        home[(*prefix, section, name)] = f"components/{section}/{safe}-{i}.{'json' if i % 2 else 'yaml'}"
    for i, route in enumerate(document.get("paths", {})):
        home[("paths", route)] = f"paths/{i}.{'yaml' if i % 2 else 'json'}"

    def relative(target: str, here: str) -> str:
        path = posixpath.relpath(target, posixpath.dirname(here) or ".")
        return path if path.startswith(".") else "./" + path

    def rewrite(value: Any, here: str) -> Any:
        if isinstance(value, dict):
            ref = value.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/"):
                parts = _parts(ref[1:])
                for size in (2, 3):
                    if tuple(parts[:size]) in home:
                        rest = parts[size:]
                        fragment = "#" + "".join("/" + _escape(p) for p in rest) if rest else ""
                        return {**value, "$ref": relative(home[tuple(parts[:size])], here) + fragment}
            return {k: rewrite(v, here) for k, v in value.items()}
        if isinstance(value, list):
            return [rewrite(v, here) for v in value]
        return value

    for parts, path in home.items():
        *outer, name = parts
        container = document
        for part in outer:
            container = container[part]
        files[path] = rewrite(container[name], path)
    for parts, path in home.items():
        *outer, name = parts
        container = document
        for part in outer:
            container = container[part]
        container[name] = {"$ref": relative(path, "openapi.yaml")}
    files["openapi.yaml"] = rewrite(document, "openapi.yaml")
    return {
        path: (
            json.dumps(value) if path.endswith(".json") else yaml.safe_dump(value, sort_keys=False)
        ).encode()
        for path, value in files.items()
    }


def dereferenced(document: Any, at: str = "paths") -> Any:
    """``document[at]`` with every internal reference replaced by what it points to;
    a reference back into itself (a cycle) becomes {"$cycle": true}."""

    def resolve(ref: str) -> Any:
        value = document
        for part in _parts(ref[1:]):
            value = value[int(part)] if isinstance(value, list) else value[part]
        return value

    def walk(value: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(value, dict):
            ref = value.get("$ref")
            if isinstance(ref, str) and ref.startswith("#"):
                if ref in seen:
                    return {"$cycle": True}
                target = walk(resolve(ref), (*seen, ref))
                return target
            return {k: walk(v, seen) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, seen) for v in value]
        return value

    return walk(document[at], ())
