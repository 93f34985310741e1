"""Descriptions are CommonMark written by strangers: rendered with markdown-it-py, then
cleaned with nh3 (the Ammonia sanitiser) so that no raw HTML from a document reaches a
page unsanitised: no script, no event handler, no javascript: link, no image."""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

# Raw HTML inside Markdown is parsed, then sanitised like everything else.
_COMMONMARK = MarkdownIt("commonmark", {"html": True})
TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "b", "i", "code", "pre",
    "blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td", "dl", "dt", "dd",
}  # fmt: skip
ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}, "ol": {"start"}}
URL_SCHEMES = {"http", "https", "mailto"}


def markdown(text: str | None) -> Markup:
    """``text`` as safe HTML."""
    if not text:
        return Markup("")
    html = _COMMONMARK.render(text)
    return Markup(
        nh3.clean(
            html,
            tags=TAGS,
            attributes=ATTRIBUTES,
            url_schemes=URL_SCHEMES,
            link_rel="noopener noreferrer nofollow",
        )
    )


def summary(text: str | None, length: int = 160) -> str:
    """The first words of ``text`` as plain text, without Markdown marks or HTML."""
    if not text:
        return ""
    plain = Markup(nh3.clean(_COMMONMARK.render(text), tags=set())).striptags()
    return plain if len(plain) <= length else plain[: length - 1].rsplit(" ", 1)[0] + "…"
