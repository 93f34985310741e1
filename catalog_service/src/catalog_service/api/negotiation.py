"""Content negotiation for the two non-JSON representations (YAML, Atom).

Each has its registered media type, sent by default, and a ``text/*`` alternative
for clients that ask for it (``Accept: text/yaml``); generated clients and browsers
read ``text/*`` as text. The spec lists both.
"""

from __future__ import annotations

from aiohttp import web

YAML = "application/yaml"
ATOM = "application/atom+xml"
ALTERNATIVES = {YAML: "text/yaml", ATOM: "text/xml"}


def _quality(accept: str, media_type: str) -> float:
    """The q an Accept header gives ``media_type`` (its most specific match); -1 when none."""
    kind = media_type.split("/", 1)[0]
    best: tuple[int, float] = (-1, -1.0)
    for part in accept.split(","):
        media_range, *params = (piece.strip() for piece in part.split(";"))
        media_range = media_range.lower()
        if media_range == media_type:
            specificity = 2
        elif media_range == f"{kind}/*":
            specificity = 1
        elif media_range == "*/*":
            specificity = 0
        else:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        best = max(best, (specificity, q))
    return best[1]


def negotiated(request: web.Request, media_type: str) -> str:
    """``media_type``, or its text alternative when the client prefers that."""
    alternative = ALTERNATIVES.get(media_type)
    accept = request.headers.get("Accept")
    if alternative is None or not accept:
        return media_type
    return alternative if _quality(accept, alternative) > _quality(accept, media_type) else media_type
