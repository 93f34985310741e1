"""Domain errors, raised below the handlers and turned into problem+json once, above."""

from __future__ import annotations


class CatalogError(Exception):
    status = 500
    title = "Internal Server Error"

    def __init__(self, detail: str, *, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        # Seconds after which the same request may succeed (a Retry-After header).
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}


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


class TooManyRequests(CatalogError):
    status = 429
    title = "Too Many Requests"
