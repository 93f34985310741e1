"""The Jinja2 environment of the HTML pages."""

from __future__ import annotations

import datetime as dt

import jinja2


def when(value: dt.datetime | str | None) -> str:
    if value is None:
        return "never"
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("catalog_service", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
    )
    env.filters["when"] = when
    return env
