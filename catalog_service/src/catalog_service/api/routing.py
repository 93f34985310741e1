"""operationId -> handler: the spec names operations the way generated clients call them.

An operationId is a short camelCase name (``createProject``); its handler is the
function of the same name in snake_case (``create_project``) in exactly one of the
handler modules. Start-up fails on an operationId with no handler or with two.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from types import ModuleType
from typing import Any

from connexion.resolver import Resolver

from . import catalog, changes, projects, service, validate, webhooks

HANDLER_MODULES: tuple[ModuleType, ...] = (projects, catalog, changes, validate, service, webhooks)


def snake_case(operation_id: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", operation_id).lower()


def handler(operation_id: str) -> Callable[..., Any]:
    name = snake_case(operation_id)
    found = [getattr(module, name) for module in HANDLER_MODULES if callable(getattr(module, name, None))]
    if len(found) != 1:
        where = "no handler module defines" if not found else "more than one handler module defines"
        raise LookupError(f"operationId {operation_id!r}: {where} {name}()")
    function: Callable[..., Any] = found[0]
    return function


def resolver() -> Resolver:
    return Resolver(function_resolver=handler)
