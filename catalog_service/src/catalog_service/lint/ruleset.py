"""A Spectral ruleset file read into rules: ``extends``, and for each rule ``given``,
``then`` (``field``, ``function``, ``functionOptions``), ``severity``, ``message``,
``formats``, ``resolved``. Only local files are read; nothing is fetched."""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from . import functions, oas, paths

SEVERITIES = {"error": 0, "warn": 1, "warning": 1, "info": 2, "information": 2, "hint": 3}
NAMES = ("error", "warning", "info", "hint")
OFF = -1
FORMATS = {"oas2", "oas3", "oas3.0", "oas3.1", "oas3_0", "oas3_1", "json-schema"}
BUILTIN_SETS = {"spectral:oas": oas.RULES}
FUNCTIONS: dict[str, Any] = {**functions.CORE, **oas.FUNCTIONS, "oasDocumentSchema": None}


class RulesetError(ValueError):
    """A ruleset the linter cannot run, and why."""


@dataclass(frozen=True)
class Then:
    field: str | None
    function: str
    options: dict[str, Any]


@dataclass(frozen=True)
class Rule:
    code: str
    severity: int
    given: tuple[str, ...]
    then: tuple[Then, ...]
    message: str | None
    formats: frozenset[str] | None
    resolved: bool
    documentation_url: str | None = None


@dataclass(frozen=True)
class Ruleset:
    name: str
    rules: tuple[Rule, ...]


def _severity(value: Any, code: str) -> int:
    if value is False or value == "off":
        return OFF
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 3:
        return value
    if isinstance(value, str) and value in SEVERITIES:
        return SEVERITIES[value]
    raise RulesetError(f"rule {code}: unknown severity {value!r}")


def _rule(code: str, body: dict[str, Any], severity: int) -> Rule:
    given = body.get("given")
    givens = given if isinstance(given, list) else [given]
    if not givens or not all(isinstance(item, str) for item in givens):
        raise RulesetError(f"rule {code}: 'given' must be a JSONPath or a list of them")
    for item in givens:
        try:
            paths.compiled(item)
        except paths.PathError as exc:
            raise RulesetError(f"rule {code}: {exc}") from exc
    then = body.get("then")
    thens = then if isinstance(then, list) else [then]
    parsed = []
    for item in thens:
        if not isinstance(item, dict) or not isinstance(item.get("function"), str):
            raise RulesetError(f"rule {code}: every 'then' needs a 'function'")
        if item["function"] not in FUNCTIONS:
            raise RulesetError(f"rule {code}: the function {item['function']!r} is not one the linter has")
        options = item.get("functionOptions") or {}
        if not isinstance(options, dict):
            raise RulesetError(f"rule {code}: 'functionOptions' must be a mapping")
        field = item.get("field")
        if field is not None and not isinstance(field, str):
            raise RulesetError(f"rule {code}: 'field' must be a string")
        for key in ("match", "notMatch"):
            if key in options:
                try:
                    functions.regex(str(options[key]))
                except functions.OptionsError as exc:
                    raise RulesetError(f"rule {code}: {exc}") from exc
        parsed.append(Then(field, item["function"], options))
    formats = body.get("formats")
    if formats is not None:
        if not isinstance(formats, list) or not all(
            isinstance(item, str) and item in FORMATS for item in formats
        ):
            raise RulesetError(f"rule {code}: 'formats' must be a list of {', '.join(sorted(FORMATS))}")
        formats = frozenset(str(item).replace("_", ".") for item in formats)
    message = body.get("message")
    return Rule(
        code=code,
        severity=severity,
        given=tuple(str(item) for item in givens),
        then=tuple(parsed),
        message=str(message) if message is not None else None,
        formats=formats,
        resolved=body.get("resolved", True) is not False,
        documentation_url=body.get("documentationUrl")
        if isinstance(body.get("documentationUrl"), str)
        else None,
    )


def _builtin(name: str, mode: str) -> dict[str, tuple[dict[str, Any], int]]:
    """A built-in set's rules, switched on as ``mode`` says: name -> (body, severity)."""
    rules = {}
    for code, body in BUILTIN_SETS[name].items():
        on = mode == "all" or (mode == "recommended" and body.get("recommended", True))
        rules[code] = (body, _severity(body.get("severity", "warn"), code) if on else OFF)
    return rules


def parse(text: str, name: str, base: Path | None = None, seen: frozenset[Path] = frozenset()) -> Ruleset:
    """The ruleset in ``text`` (YAML or JSON). ``base`` is the folder local ``extends``
    are read from."""
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise RulesetError(f"{name}: not YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise RulesetError(f"{name}: a ruleset is a mapping with 'rules'")
    inherited: dict[str, tuple[dict[str, Any], int]] = {}
    for entry in data.get("extends") or []:
        target, mode = (
            (entry[0], entry[1]) if isinstance(entry, list) and len(entry) == 2 else (entry, "recommended")
        )
        if mode not in ("off", "recommended", "all"):
            raise RulesetError(f"{name}: cannot extend {entry!r}")
        if target in BUILTIN_SETS:
            inherited.update(_builtin(target, mode))
        elif isinstance(target, str) and base is not None and not target.startswith(("http:", "https:")):
            file = (base / target).resolve()
            if file in seen:
                raise RulesetError(f"{name}: extends itself through {target}")
            inner = load(file, seen | {file})
            for rule in inner.rules:
                inherited[rule.code] = ({"__rule__": rule}, rule.severity if mode != "off" else OFF)
        else:
            raise RulesetError(f"{name}: cannot extend {target!r}: only spectral:oas and local files")
    rules: dict[str, Rule] = {}
    own = data.get("rules") or {}
    if not isinstance(own, dict):
        raise RulesetError(f"{name}: 'rules' must be a mapping")
    for code, (body, severity) in inherited.items():
        if code not in own and severity != OFF:
            rules[code] = _rule(code, _body(body), severity)
    for code, body in own.items():
        code = str(code)
        if isinstance(body, dict):
            if "given" in body or code not in inherited:
                rules[code] = _rule(code, body, _severity(body.get("severity", "warn"), code))
            else:
                merged = copy.deepcopy(_body(inherited[code][0]))
                merged.update(body)
                rules[code] = _rule(code, merged, _severity(merged.get("severity", "warn"), code))
        elif code in inherited:
            parent = _body(inherited[code][0])
            severity = (
                _severity(parent.get("severity", "warn"), code) if body is True else _severity(body, code)
            )
            rules[code] = _rule(code, parent, severity)
        else:
            raise RulesetError(f"{name}: rule {code} is not defined here nor in what the ruleset extends")
    return Ruleset(name=name, rules=tuple(rule for rule in rules.values() if rule.severity != OFF))


def _body(body: dict[str, Any]) -> dict[str, Any]:
    if "__rule__" not in body:
        return body
    rule: Rule = body["__rule__"]
    return {
        "given": list(rule.given),
        "then": [{"field": t.field, "function": t.function, "functionOptions": t.options} for t in rule.then],
        "message": rule.message,
        "formats": sorted(rule.formats) if rule.formats else None,
        "resolved": rule.resolved,
        "documentationUrl": rule.documentation_url,
    }


DEFAULT = Path(__file__).parent / "rulesets" / "linter.yaml"
DEFAULT_NAME = "NLGov API Design Rules (Logius, v2.2.0-rc.1-18-g6edd13c)"


def load(path: str | Path | None = None, seen: frozenset[Path] = frozenset()) -> Ruleset:
    """The ruleset in the file ``path`` (the NLGov API Design Rules for None), named
    after the file and its SHA-256, so that a report says which rules made it."""
    file = Path(path) if path is not None else DEFAULT
    try:
        raw = file.read_bytes()
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesetError(f"cannot read the ruleset {file}: {exc}") from exc
    name = DEFAULT_NAME if path is None else f"{file.name} (sha256 {hashlib.sha256(raw).hexdigest()[:12]})"
    return parse(text, name, file.parent, seen)
