"""What changed between two valid versions of an API, and what of it breaks clients.

Swagger 2.0 and OpenAPI 3.x are first brought to one shape (operations with their
parameters, request bodies and responses per media type, security, lifecycle);
local ``$ref``s are followed (a schema met again on the same walk is not walked
twice, so recursive schemas end), and every finding says where it is written in the
old and the new document (JSON pointers).

Whether a change breaks depends on its direction: a client *sends* requests
(anything newly refused breaks it) and *reads* responses (anything it may now be
sent that it could not be before breaks it). Findings are named by oasdiff's rule ids
where one matches, with oasdiff's level for it (oasdiff_rules.json): ``breaking``,
``possibly-breaking`` or ``info``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from ..pointers import escape
from .document import (
    STABILITY,
    Document,
    Node,
    Operation,
    is_json,
    operations,
    param_schema,
    removal,
    sunset,
    sunset_moved,
    swagger2_schema,
    unchanged_refs,
)
from .schemas import Schemas, Where, shown

MAX_CHANGES = 1000

_RULES = json.loads(resources.files(__package__).joinpath("oasdiff_rules.json").read_text("utf-8"))
OASDIFF_LEVELS: dict[str, str] = _RULES["levels"]
LEVEL_NAMES = {"ERR": "breaking", "WARN": "possibly-breaking", "INFO": "info"}
# Findings of ours that oasdiff has no rule for.
OWN_LEVELS = {
    "unannounced-breaking-change": "ERR",
    "version-changed": "INFO",
}


def level_of(rule: str) -> str:
    return LEVEL_NAMES[OASDIFF_LEVELS.get(rule) or OWN_LEVELS.get(rule, "INFO")]


@dataclass
class Change:
    id: str
    method: str | None
    path: str | None
    message: str
    old_pointer: str | None = None
    new_pointer: str | None = None
    level: str = ""

    def __post_init__(self) -> None:
        self.level = self.level or level_of(self.id)

    @property
    def breaking(self) -> bool:
        return self.level == "breaking"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            # The name the catalog used before ids: kept for readers of older answers.
            "kind": self.id,
            "level": self.level,
            "breaking": self.breaking,
            "method": self.method,
            "path": self.path,
            "message": self.message,
            "old_pointer": self.old_pointer,
            "new_pointer": self.new_pointer,
        }


@dataclass
class _Differ(Schemas):
    old_doc: dict[str, Any]
    new_doc: dict[str, Any]
    today: dt.date
    changes: list[Change] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.old = Document(self.old_doc)
        self.new = Document(self.new_doc)
        self.unchanged = unchanged_refs(self.old_doc, self.new_doc)
        self.visited = set()

    def add(
        self,
        rule: str,
        op: Operation | None,
        message: str,
        old: str | None = None,
        new: str | None = None,
        *,
        path: str | None = None,
    ) -> None:
        self.full = len(self.changes) >= MAX_CHANGES
        if not self.full:
            self.changes.append(
                Change(rule, op.method if op else None, op.path if op else path, message, old, new)
            )

    # -- paths and operations ---------------------------------------------------------

    def run(self) -> list[Change]:
        old_ops, new_ops = operations(self.old), operations(self.new)
        old_paths = {key[1] for key in old_ops}
        new_paths = {key[1] for key in new_ops}
        for template in sorted(old_paths - new_paths):
            ops = [op for key, op in old_ops.items() if key[1] == template]
            if all(op.unstable for op in ops):
                continue
            self.removed(ops[0], ops, whole_path=True)
        for key in sorted(old_ops.keys() - new_ops.keys()):
            if key[1] in new_paths and not old_ops[key].unstable:
                self.removed(old_ops[key], [old_ops[key]], whole_path=False)
        for key in sorted(new_ops.keys() - old_ops.keys()):
            op = new_ops[key]
            self.add("endpoint-added", op, f"{op.method} {op.path} was added", new=op.pointer)
        for key in sorted(old_ops.keys() & new_ops.keys()):
            self.operation(old_ops[key], new_ops[key])
        self.webhooks()
        return self.changes

    def removed(self, op: Operation, ops: list[Operation], *, whole_path: bool) -> None:
        what = f"path {op.path}" if whole_path else f"{op.method} {op.path}"
        base = "api-path" if whole_path else "api"
        pointer = f"/paths/{escape(op.path)}" if whole_path else op.pointer
        target = None if whole_path else op
        why, date = removal([o.raw for o in ops], self.today)
        rule, sentence = {
            "without-deprecation": (f"{base}-removed-without-deprecation", "without deprecation"),
            "unreadable": (
                "api-path-sunset-parse" if whole_path else "api-deprecated-sunset-parse",
                "and its x-sunset date cannot be read",
            ),
            "before-sunset": (f"{base}-removed-before-sunset", f"before its sunset date {date}"),
            "with-deprecation": (f"{base}-removed-with-deprecation", "after its deprecation"),
        }[why]
        self.add(
            rule,
            target,
            f"{what} was removed{',' if why == 'unreadable' else ''} {sentence}",
            pointer,
            path=op.path,
        )

    def operation(self, old: Operation, new: Operation) -> None:
        self.visited = set()
        # The stability level: checked before anything else, whatever the level.
        if new.stability is not None and new.stability not in STABILITY:
            self.add(
                "api-invalid-stability-level",
                new,
                f"x-stability-level {new.stability!r} is not one of {', '.join(STABILITY)}",
                new=new.pointer + "/x-stability-level",
            )
            return
        if old.stability in STABILITY and new.stability in STABILITY:
            before, after = (
                STABILITY.index(old.stability or "stable"),
                STABILITY.index(new.stability or "stable"),
            )
            if after < before:
                self.add(
                    "api-stability-decreased",
                    new,
                    f"the stability level went down from {old.stability} to {new.stability}",
                    old.pointer,
                    new.pointer,
                )
        elif old.stability is None and new.stability in STABILITY and new.stability != "stable":
            self.add(
                "api-stability-decreased",
                new,
                f"the stability level went down to {new.stability}",
                old.pointer,
                new.pointer,
            )
        if old.unstable:
            return
        self.lifecycle(old, new)
        self.parameters(old, new)
        self.request_body(old, new)
        self.responses(old, new)
        self.security(old, new)

    def lifecycle(self, old: Operation, new: Operation) -> None:
        if new.deprecated and not old.deprecated:
            present, date = sunset(new.raw)
            if present and date is None:
                self.add(
                    "api-deprecated-sunset-parse",
                    new,
                    "the operation was deprecated with an x-sunset date that cannot be read",
                    new=new.pointer,
                )
            else:
                rule = "endpoint-deprecated-with-sunset" if present else "endpoint-deprecated"
                self.add(rule, new, f"{new.method} {new.path} was deprecated", old.pointer, new.pointer)
        elif old.deprecated and not new.deprecated:
            self.add(
                "endpoint-reactivated",
                new,
                f"{new.method} {new.path} is no longer deprecated",
                old.pointer,
                new.pointer,
            )
        elif old.deprecated and new.deprecated:
            moved, dates = sunset_moved(old.raw, new.raw)
            if moved is not None:
                rule, sentence = {
                    "deleted": ("sunset-deleted", "the deprecated operation's x-sunset date was removed"),
                    "unreadable": ("api-path-sunset-parse", "the operation's x-sunset date cannot be read"),
                    "earlier": (
                        "api-sunset-date-changed-too-small",
                        f"the sunset date was moved earlier, {dates}",
                    ),
                }[moved]
                self.add(rule, new, sentence, old.pointer, new.pointer)

    # -- parameters -----------------------------------------------------------------

    def parameters(self, old: Operation, new: Operation) -> None:
        for key in sorted(old.parameters.keys() - new.parameters.keys()):
            param = old.parameters[key]
            where, name = param.value.get("in"), param.value.get("name")
            why, date = removal([param.value], self.today)
            rule, sentence = {
                "without-deprecation": ("request-parameter-removed", "was removed"),
                "unreadable": (
                    "request-parameter-sunset-parse",
                    "was removed, and its x-sunset date cannot be read",
                ),
                "before-sunset": (
                    "request-parameter-removed-before-sunset",
                    f"was removed before its sunset date {date}",
                ),
                "with-deprecation": (
                    "request-parameter-removed-with-deprecation",
                    "was removed after its deprecation",
                ),
            }[why]
            self.add(rule, new, f"the {where} parameter '{name}' {sentence}", param.pointer)
        for key in sorted(new.parameters.keys() - old.parameters.keys()):
            param = new.parameters[key]
            where, name = param.value.get("in"), param.value.get("name")
            if where == "path":
                self.add(
                    "new-request-path-parameter",
                    new,
                    f"the path parameter '{name}' was added",
                    new=param.pointer,
                )
            else:
                required = param.value.get("required") is True
                kind = "required" if required else "optional"
                rule = (
                    f"new-{kind}-request-default-parameter-to-existing-path"
                    if key in new.from_path
                    else f"new-{kind}-request-parameter"
                )
                self.add(rule, new, f"the {kind} {where} parameter '{name}' was added", new=param.pointer)
        for key in sorted(old.parameters.keys() & new.parameters.keys()):
            self.parameter(new, old.parameters[key], new.parameters[key])

    def parameter(self, op: Operation, old: Node, new: Node) -> None:
        where, name = new.value.get("in"), new.value.get("name")
        said = f"the {where} parameter '{name}'"
        if new.value.get("required") is True and old.value.get("required") is not True:
            self.add(
                "request-parameter-became-required", op, f"{said} became required", old.pointer, new.pointer
            )
        elif old.value.get("required") is True and new.value.get("required") is not True and where != "path":
            self.add(
                "request-parameter-became-optional", op, f"{said} became optional", old.pointer, new.pointer
            )
        if new.value.get("deprecated") is True and old.value.get("deprecated") is not True:
            present, date = sunset(new.value)
            if present and date is None:
                self.add(
                    "request-parameter-sunset-parse",
                    op,
                    f"{said} was deprecated with an x-sunset date that cannot be read",
                    old.pointer,
                    new.pointer,
                )
            else:
                self.add(
                    "request-parameter-deprecated", op, f"{said} was deprecated", old.pointer, new.pointer
                )
        elif old.value.get("deprecated") is True and new.value.get("deprecated") is True:
            moved, dates = sunset_moved(old.value, new.value)
            if moved is not None:
                rule, sentence = {
                    "deleted": (
                        "request-parameter-sunset-deleted",
                        f"the x-sunset date of {said} was removed",
                    ),
                    "unreadable": (
                        "request-parameter-sunset-parse",
                        f"the x-sunset date of {said} cannot be read",
                    ),
                    "earlier": (
                        "request-parameter-sunset-date-changed-too-small",
                        f"the sunset date of {said} was moved earlier",
                    ),
                }[moved]
                self.add(rule, op, sentence, old.pointer, new.pointer)
        elif old.value.get("deprecated") is True and new.value.get("deprecated") is not True:
            self.add(
                "request-parameter-reactivated",
                op,
                f"{said} is no longer deprecated",
                old.pointer,
                new.pointer,
            )
        old_schema = self.old.resolve(param_schema(old))
        new_schema = self.new.resolve(param_schema(new))
        if isinstance(old_schema.value, dict) and isinstance(new_schema.value, dict):
            self.default_value(op, old_schema, new_schema, said)
        self.schema(
            old_schema,
            new_schema,
            op,
            Where("request", "request-parameter", said, header=where == "header"),
            0,
        )

    def default_value(self, op: Operation, old: Node, new: Node, said: str) -> None:
        had, has = "default" in old.value, "default" in new.value
        if had and has and old.value["default"] != new.value["default"]:
            self.add(
                "request-parameter-default-value-changed",
                op,
                f"the default of {said} changed from {shown(old.value['default'])} to {shown(new.value['default'])}",
                old.pointer,
                new.pointer,
            )
        elif has and not had:
            self.add(
                "request-parameter-default-value-added",
                op,
                f"{said} has a default now: {shown(new.value['default'])}",
                old.pointer,
                new.pointer,
            )
        elif had and not has:
            self.add(
                "request-parameter-default-value-removed",
                op,
                f"{said} lost its default {shown(old.value['default'])}",
                old.pointer,
                new.pointer,
            )

    # -- request bodies -------------------------------------------------------------

    def request_body(self, old: Operation, new: Operation) -> None:
        if old.body is None and new.body is None:
            return
        if old.body is None:
            assert new.body is not None
            required = new.body.value.get("required") is True
            self.add(
                "request-body-added-required" if required else "request-body-added-optional",
                new,
                f"a{' required' if required else 'n optional'} request body was added",
                new=new.body.pointer,
            )
            return
        if new.body is None:
            self.add("request-body-removed", new, "the request body was removed", old.body.pointer)
            return
        if new.body.value.get("required") is True and old.body.value.get("required") is not True:
            self.add(
                "request-body-became-required",
                new,
                "the request body became required",
                old.body.pointer,
                new.body.pointer,
            )
        elif old.body.value.get("required") is True and new.body.value.get("required") is not True:
            self.add(
                "request-body-became-optional",
                new,
                "the request body became optional",
                old.body.pointer,
                new.body.pointer,
            )
        self.contents(new, "request", "the request body", old.body_content, new.body_content)

    # -- responses --------------------------------------------------------------------

    def responses(self, old: Operation, new: Operation) -> None:
        for status in sorted(old.responses.keys() - new.responses.keys()):
            success = status.startswith("2") or status.upper() == "2XX"
            self.add(
                "response-success-status-removed" if success else "response-non-success-status-removed",
                new,
                f"the response {status} was removed",
                old.responses[status].pointer,
            )
        for status in sorted(new.responses.keys() - old.responses.keys()):
            success = status.startswith("2")
            self.add(
                "response-success-status-added" if success else "response-non-success-status-added",
                new,
                f"the response {status} was added",
                new=new.responses[status].pointer,
            )
        for status in sorted(old.responses.keys() & new.responses.keys()):
            self.response(new, status, old, new)

    def response(self, op: Operation, status: str, old_op: Operation, new_op: Operation) -> None:
        said = f"the {status} response"
        self.contents(op, "response", said, old_op.response_content[status], new_op.response_content[status])
        old_headers, new_headers = old_op.response_headers[status], new_op.response_headers[status]
        for name in sorted(old_headers.keys() - new_headers.keys()):
            header = self.old.resolve(old_headers[name])
            required = isinstance(header.value, dict) and header.value.get("required") is True
            self.add(
                "required-response-header-removed" if required else "optional-response-header-removed",
                op,
                f"the {status} response no longer has the header {name}",
                header.pointer,
            )
        for name in sorted(new_headers.keys() - old_headers.keys()):
            self.add(
                "response-header-added",
                op,
                f"the {status} response has a new header {name}",
                new=new_headers[name].pointer,
            )
        for name in sorted(old_headers.keys() & new_headers.keys()):
            old_header = self.old.resolve(old_headers[name])
            new_header = self.new.resolve(new_headers[name])
            if not (isinstance(old_header.value, dict) and isinstance(new_header.value, dict)):
                continue
            if old_header.value.get("required") is True and new_header.value.get("required") is not True:
                self.add(
                    "response-header-became-optional",
                    op,
                    f"the {status} response's header {name} became optional",
                    old_header.pointer,
                    new_header.pointer,
                )
            old_schema = (
                old_header.get("schema")
                if "schema" in old_header.value
                else Node(swagger2_schema(old_header.value), old_header.pointer)
            )
            new_schema = (
                new_header.get("schema")
                if "schema" in new_header.value
                else Node(swagger2_schema(new_header.value), new_header.pointer)
            )
            self.schema(
                old_schema,
                new_schema,
                op,
                Where("response", "response-header", f"the {status} response's header {name}"),
                0,
            )

    def contents(
        self, op: Operation, side: str, said: str, old: dict[str, Node], new: dict[str, Node]
    ) -> None:
        """A request body's or a response's media types, and each one's schema compared
        with the schema of the same media type only."""
        # oasdiff names a response's media types "response-media-type-*" and a
        # request's "request-body-media-type-*"; their schemas "<side>-body-...".
        kinds = "request-body" if side == "request" else "response"
        for media in sorted(old.keys() - new.keys()):
            self.add(f"{kinds}-media-type-removed", op, f"{said} is no longer {media}", old[media].pointer)
        for media in sorted(new.keys() - old.keys()):
            self.add(f"{kinds}-media-type-added", op, f"{said} may now be {media}", new=new[media].pointer)
        for media in sorted(old.keys() & new.keys()):
            old_schema, new_schema = old[media], new[media]
            if old_schema.value is None and new_schema.value is not None:
                self.add(
                    f"{side}-body-media-type-schema-added",
                    op,
                    f"{said} as {media} has a schema now",
                    new=new_schema.pointer,
                )
            elif old_schema.value is not None and new_schema.value is None:
                self.add(
                    f"{side}-body-media-type-schema-removed",
                    op,
                    f"{said} as {media} has no schema any more",
                    old_schema.pointer,
                )
            else:
                where = Where(side, f"{side}-body", said, loose=not is_json(media))
                self.schema(old_schema, new_schema, op, where, 0)

    # -- security -------------------------------------------------------------------

    def security(self, old: Operation, new: Operation) -> None:
        def alternatives(requirements: list[Any] | None) -> set[frozenset[str]]:
            return {frozenset(r) for r in requirements or [] if isinstance(r, dict)}

        before, after = alternatives(old.security), alternatives(new.security)
        global_change = "security" not in new.raw and "security" not in old.raw
        for alt in sorted(after - before, key=sorted):
            self.add(
                "api-global-security-added" if global_change else "api-security-added",
                new,
                f"the security requirement {', '.join(sorted(alt)) or '(none)'} was added",
                new=new.security_pointer,
            )
        for alt in sorted(before - after, key=sorted):
            self.add(
                "api-global-security-removed" if global_change else "api-security-removed",
                new,
                f"the security requirement {', '.join(sorted(alt)) or '(none)'} was removed",
                old.security_pointer,
            )

    def webhooks(self) -> None:
        old_hooks, new_hooks = self.old_doc.get("webhooks"), self.new_doc.get("webhooks")
        if not isinstance(old_hooks, dict):
            return
        for name in sorted(set(old_hooks) - set(new_hooks if isinstance(new_hooks, dict) else {})):
            self.add(
                "webhook-removed",
                None,
                f"the webhook {name} was removed",
                f"/webhooks/{escape(name)}",
                path=None,
            )


def _major(version: Any) -> str | None:
    match = re.match(r"\s*v?(\d+)", str(version)) if version is not None else None
    return match.group(1) if match else None


def diff(old: dict[str, Any], new: dict[str, Any], *, today: dt.date | None = None) -> list[dict[str, Any]]:
    """Every change from ``old`` to ``new``, each with its rule id and level; [] when
    nothing changed."""
    differ = _Differ(old, new, today or dt.date.today())
    changes = differ.run()
    old_version = (old.get("info") or {}).get("version")
    new_version = (new.get("info") or {}).get("version")
    if old_version != new_version:
        changes.insert(
            0,
            Change(
                "version-changed",
                None,
                None,
                f"info.version changed from {old_version} to {new_version}",
                "/info/version",
                "/info/version",
            ),
        )
    if any(c.breaking for c in changes) and _major(old_version) == _major(new_version):
        changes.insert(
            0,
            Change(
                "unannounced-breaking-change",
                None,
                None,
                f"breaking changes while the major version stayed {_major(old_version) or old_version!r}",
                "/info/version",
                "/info/version",
            ),
        )
    return [c.as_dict() for c in changes]
