"""Where the service's own OpenAPI document lives."""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Any

import yaml


def spec_path() -> Path:
    """The packaged copy in an installed wheel, else ``openapi/catalog.yaml`` of the checkout."""
    packaged = resources.files("catalog_service") / "openapi" / "catalog.yaml"
    if packaged.is_file():
        return Path(str(packaged))
    checkout = Path(__file__).resolve().parents[3] / "openapi" / "catalog.yaml"
    if checkout.is_file():
        return checkout
    raise FileNotFoundError("openapi/catalog.yaml is neither packaged nor in the checkout")


@functools.cache
def spec_document() -> dict[str, Any]:
    """The service's own OpenAPI document, as loaded (read once)."""
    with spec_path().open(encoding="utf-8") as file:
        document: dict[str, Any] = yaml.load(file, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return document


def api_version() -> str:
    """info.version of the service's own OpenAPI document."""
    return str(spec_document()["info"]["version"])
