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
from yarl import URL

from . import i18n
from .markdown import markdown, summary

# A reader's choice of language is remembered for a year.
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600


def when(value: dt.datetime | str | None) -> str:
    if value is None:
        return i18n.gettext("never")
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
    """A page in the reader's language, with links to the same page in the others."""
    language, chosen = i18n.choose(
        request.query.get("lang"),
        request.cookies.get(i18n.COOKIE),
        request.headers.get("Accept-Language", ""),
    )
    here = URL.build(path=request.path, query=request.query)
    switch = {other: str(here.update_query(lang=other)) for other in i18n.LANGUAGES}
    token = i18n.use(language)
    try:
        response = aiohttp_jinja2.render_template(
            template,
            request,
            context | {"lang": language, "languages": i18n.NAMES, "switch": switch},
            app_key=TEMPLATES,
        )
    finally:
        i18n.reset(token)
    response.headers["Content-Language"] = language
    response.headers["Vary"] = "Accept-Language, Cookie"
    if chosen:
        response.set_cookie(
            i18n.COOKIE, language, max_age=LANGUAGE_COOKIE_AGE, path="/", samesite="Lax", httponly=True
        )
    return response


def setup_templates(app: web.Application) -> None:
    environment = aiohttp_jinja2.setup(
        app,
        app_key=TEMPLATES,
        loader=jinja2.PackageLoader("catalog_service.pages", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        filters={"when": when, "markdown": markdown, "summary": summary},
        extensions=["jinja2.ext.i18n"],
    )
    # {% trans %} and _() look up the words in the language of the page being rendered.
    environment.install_gettext_callables(  # type: ignore[attr-defined]
        i18n.gettext, i18n.ngettext, newstyle=True
    )
