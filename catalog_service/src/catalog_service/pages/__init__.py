"""The human pages: HTML for people, apart from the JSON API, rendered with Jinja2
through aiohttp-jinja2."""

from __future__ import annotations

import datetime as dt
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from .markdown import markdown, summary


def when(value: dt.datetime | str | None) -> str:
    if value is None:
        return "never"
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


# Where Swagger UI's files are served (from the flask-swagger-ui wheel, which carries a
# current Swagger UI 5 and follows its releases), and where our own static files are.
SWAGGER_UI = "/swagger-ui"
SWAGGER_UI_FILES = Path(str(resources.files("flask_swagger_ui") / "dist"))
STATIC_FILES = Path(__file__).parent / "static"

# Our own key: connexion sets up aiohttp-jinja2 in the /api sub-app under the default
# one, for its Swagger UI, and config_dict would find that environment first.
TEMPLATES = web.AppKey("templates", jinja2.Environment)


def render(template: str, request: web.Request, context: dict[str, Any]) -> web.Response:
    return aiohttp_jinja2.render_template(template, request, context, app_key=TEMPLATES)


def setup_templates(app: web.Application) -> None:
    aiohttp_jinja2.setup(
        app,
        app_key=TEMPLATES,
        loader=jinja2.PackageLoader("catalog_service.pages", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        filters={"when": when, "markdown": markdown, "summary": summary},
    )
