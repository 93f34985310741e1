"""Domain errors, raised below the handlers and turned into problem+json once, above."""

from __future__ import annotations


class CatalogError(Exception):
    status = 500
    title = "Internal Server Error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadRequest(CatalogError):
    status = 400
    title = "Bad Request"


class Unauthorized(CatalogError):
    status = 401
    title = "Unauthorized"


class Forbidden(CatalogError):
    status = 403
    title = "Forbidden"


class NotFound(CatalogError):
    status = 404
    title = "Not Found"


class Conflict(CatalogError):
    status = 409
    title = "Conflict"


class Unavailable(CatalogError):
    status = 503
    title = "Service Unavailable"
