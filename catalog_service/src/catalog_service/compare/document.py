"""Reading a document for comparison: Swagger 2.0 and OpenAPI 3.x brought to one
shape (operations with their parameters, request bodies and responses per media
type, security, lifecycle), every value with the JSON pointer where it is written."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from ..domain import HTTP_METHODS
from ..pointers import escape, resolve

# The stability levels of x-stability-level, least stable first; changes to an
# operation still in draft or alpha break nobody's promise.
STABILITY = ("draft", "alpha", "beta", "stable")
UNSTABLE = ("draft", "alpha")


@dataclass
class Node:
    """A value of a document and the JSON pointer where it is written (after $refs)."""

    value: Any
    pointer: str

    def get(self, key: str) -> Node:
        value = self.value.get(key) if isinstance(self.value, dict) else None
        return Node(value, f"{self.pointer}/{escape(key)}")

    def at(self, index: int) -> Node:
        value = self.value[index] if isinstance(self.value, list) and index < len(self.value) else None
        return Node(value, f"{self.pointer}/{index}")


@dataclass
class Document:
    root: dict[str, Any]

    def resolve(self, node: Node) -> Node:
        """Follow local $refs (a chain of them that comes back on itself stops)."""
        seen: set[str] = set()
        while isinstance(node.value, dict) and isinstance(node.value.get("$ref"), str):
            ref = node.value["$ref"]
            if not ref.startswith("#") or ref in seen:
                break
            seen.add(ref)
            node = Node(_target(self.root, ref), ref[1:])
        return node


def template(path: str) -> str:
    """A path with its parameters' names dropped: /pets/{id} and /pets/{petId} are one."""
    return re.sub(r"\{[^}/]*\}", "{}", path)


def path_params(path: str) -> list[str]:
    return re.findall(r"\{([^}/]*)\}", path)


def is_json(media_type: str) -> bool:
    return "json" in media_type.lower()


@dataclass
class Operation:
    method: str
    path: str
    pointer: str
    raw: dict[str, Any]
    # (location, name) -> the parameter; path parameters by position: ("path", "#0").
    parameters: dict[tuple[str, str], Node]
    body: Node | None
    body_content: dict[str, Node]
    responses: dict[str, Node]
    response_content: dict[str, dict[str, Node]]
    response_headers: dict[str, dict[str, Node]]
    security: list[Any] | None
    security_pointer: str
    # The parameters the path item declares for all its operations.
    from_path: set[tuple[str, str]] = field(default_factory=set)

    @property
    def deprecated(self) -> bool:
        return self.raw.get("deprecated") is True

    @property
    def stability(self) -> str | None:
        value = self.raw.get("x-stability-level")
        return value if isinstance(value, str) else None

    @property
    def unstable(self) -> bool:
        return self.stability in UNSTABLE


def content_of(doc: Document, node: Node) -> dict[str, Node]:
    content = node.get("content")
    if not isinstance(content.value, dict):
        return {}
    return {str(media): content.get(media).get("schema") for media in content.value}


def operations(doc: Document) -> dict[tuple[str, str], Operation]:
    root = doc.root
    swagger2 = "swagger" in root
    consumes = root.get("consumes") if isinstance(root.get("consumes"), list) else None
    produces = root.get("produces") if isinstance(root.get("produces"), list) else None
    found: dict[tuple[str, str], Operation] = {}
    items: list[tuple[str, Node]] = []
    # Paths, and the webhooks of OpenAPI 3.1 (requests the API sends, named by name).
    for section, label in (("paths", "{}"), ("webhooks", "webhook {}")):
        container = Node(root.get(section), f"/{section}")
        if isinstance(container.value, dict):
            items += [(label.format(key), container.get(key)) for key in container.value]
    global_security = root.get("security")
    for path, raw_item in items:
        item = doc.resolve(raw_item)
        if not isinstance(item.value, dict):
            continue
        positions = {name: i for i, name in enumerate(path_params(str(path)))}
        for method in HTTP_METHODS:
            op = item.get(method)
            if not isinstance(op.value, dict):
                continue
            parameters: dict[tuple[str, str], Node] = {}
            body: Node | None = None
            body_content: dict[str, Node] = {}
            shared = item.get("parameters")
            own = op.get("parameters")
            listed = (
                [shared.at(i) for i in range(len(shared.value or []))]
                if isinstance(shared.value, list)
                else []
            )
            listed += [own.at(i) for i in range(len(own.value or []))] if isinstance(own.value, list) else []
            form: dict[str, Any] = {}
            shared_count = len(shared.value) if isinstance(shared.value, list) else 0
            from_path: set[tuple[str, str]] = set()
            for index, raw_param in enumerate(listed):
                param = doc.resolve(raw_param)
                if not isinstance(param.value, dict) or "name" not in param.value:
                    continue
                where, name = str(param.value.get("in")), str(param.value["name"])
                if where == "body":
                    body = param
                    media = (op.value.get("consumes") or consumes or ["application/json"])[0]
                    body_content = {str(media): param.get("schema")}
                    continue
                if where == "formData":
                    form[name] = param.value
                    continue
                key = (
                    (where, f"#{positions[name]}") if where == "path" and name in positions else (where, name)
                )
                parameters[key] = param
                if index < shared_count:
                    from_path.add(key)
                else:
                    from_path.discard(key)
            if form:
                schema = {
                    "type": "object",
                    "properties": {k: swagger2_schema(v) for k, v in form.items()},
                    "required": [k for k, v in form.items() if v.get("required")],
                }
                body = Node({"required": bool(schema["required"])}, op.pointer + "/parameters")
                body_content = {"application/x-www-form-urlencoded": Node(schema, op.pointer + "/parameters")}
            if not swagger2 and op.value.get("requestBody") is not None:
                request_body = doc.resolve(op.get("requestBody"))
                if isinstance(request_body.value, dict):
                    body = request_body
                    body_content = content_of(doc, request_body)
            responses: dict[str, Node] = {}
            response_content: dict[str, dict[str, Node]] = {}
            response_headers: dict[str, dict[str, Node]] = {}
            raw_responses = op.get("responses")
            for status in raw_responses.value or {} if isinstance(raw_responses.value, dict) else {}:
                response = doc.resolve(raw_responses.get(status))
                if not isinstance(response.value, dict):
                    continue
                responses[str(status)] = response
                if swagger2:
                    media = (op.value.get("produces") or produces or ["application/json"])[0]
                    response_schema = response.get("schema")
                    response_content[str(status)] = (
                        {str(media): response_schema} if response_schema.value is not None else {}
                    )
                else:
                    response_content[str(status)] = content_of(doc, response)
                headers = response.get("headers")
                response_headers[str(status)] = (
                    {str(h): headers.get(h) for h in headers.value} if isinstance(headers.value, dict) else {}
                )
            security = op.value.get("security", global_security)
            found[(method.upper(), template(str(path)))] = Operation(
                method=method.upper(),
                path=str(path),
                pointer=op.pointer,
                raw=op.value,
                parameters=parameters,
                body=body,
                body_content=body_content,
                responses=responses,
                response_content=response_content,
                response_headers=response_headers,
                security=security if isinstance(security, list) else None,
                security_pointer=op.pointer + "/security" if "security" in op.value else "/security",
                from_path=from_path,
            )
    return found


_SWAGGER2_PARAM_KEYS = frozenset(
    {"type", "format", "items", "enum", "default", "maximum", "minimum", "exclusiveMaximum",
     "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems",
     "multipleOf", "collectionFormat"}
)  # fmt: skip


def swagger2_schema(param: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in param.items() if k in _SWAGGER2_PARAM_KEYS}


def param_schema(param: Node) -> Node:
    """OpenAPI 3 parameters carry a schema (or content); Swagger 2.0 ones are their own."""
    value = param.value
    if isinstance(value.get("schema"), dict):
        return param.get("schema")
    content = value.get("content")
    if isinstance(content, dict) and content:
        media = next(iter(content))
        return param.get("content").get(media).get("schema")
    return Node(swagger2_schema(value), param.pointer)


def sunset(raw: dict[str, Any]) -> tuple[bool, dt.date | None]:
    """(present, date) of an x-sunset; (True, None) when it cannot be read."""
    value = raw.get("x-sunset")
    if value is None:
        return False, None
    text = value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else str(value)
    try:
        return True, dt.date.fromisoformat(text[:10]) if len(text) >= 10 else None
    except ValueError:
        return True, None


def removal(raws: list[dict[str, Any]], today: dt.date) -> tuple[str, dt.date | None]:
    """Why something was removed, by what it said of itself (an operation, the
    operations of a path, a parameter): ``without-deprecation``, ``unreadable`` (an
    x-sunset that cannot be read), ``before-sunset`` (with the date) or
    ``with-deprecation``."""
    if not all(raw.get("deprecated") is True for raw in raws):
        return "without-deprecation", None
    sunsets = [sunset(raw) for raw in raws]
    if any(present and date is None for present, date in sunsets):
        return "unreadable", None
    future = [date for _, date in sunsets if date is not None and date > today]
    return ("before-sunset", max(future)) if future else ("with-deprecation", None)


def sunset_moved(old: dict[str, Any], new: dict[str, Any]) -> tuple[str | None, str]:
    """How the x-sunset of something deprecated in both versions changed: ``deleted``,
    ``unreadable`` (on either side), ``earlier`` (with "from X to Y"), or None."""
    had, before = sunset(old)
    has, after = sunset(new)
    if had and not has:
        return "deleted", ""
    if has and (after is None or (had and before is None)):
        return "unreadable", ""
    if before is not None and after is not None and after < before:
        return "earlier", f"from {before} to {after}"
    return None, ""


def _target(root: Any, ref: str) -> Any:
    """What a local $ref points at, without following further; None when nothing."""
    try:
        return resolve(root, ref[1:])
    except KeyError:
        return None


def _refs_in(value: Any) -> set[str]:
    found: set[str] = set()
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#"):
                found.add(ref)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def unchanged_refs(old_root: Any, new_root: Any) -> frozenset[str]:
    """The local $refs that point at the same value in both documents, and whose
    values refer only to such $refs: comparing through one of them finds nothing, so
    a walk need not go there (shared schemas are reached from every operation)."""
    refs = _refs_in(old_root) | _refs_in(new_root)
    inner: dict[str, set[str]] = {}
    dirty: set[str] = set()
    for ref in refs:
        before, after = _target(old_root, ref), _target(new_root, ref)
        if before is None or after is None or before != after:
            dirty.add(ref)
        inner[ref] = _refs_in(before) | _refs_in(after)
    users: dict[str, set[str]] = {}
    for ref, inside in inner.items():
        for target in inside:
            users.setdefault(target, set()).add(ref)
    pending = list(dirty)
    while pending:
        for user in users.get(pending.pop(), ()):
            if user not in dirty:
                dirty.add(user)
                pending.append(user)
    return frozenset(refs - dirty)
