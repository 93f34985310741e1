"""The catalog's words: what a project's status, a collection's outcome, a verdict and
a job are. Plain data, used by every layer; nothing here does I/O."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any, Final, Literal, NotRequired, TypedDict, get_args

import orjson

# A project's status: pending (never collected), valid, invalid (downloaded but not a
# parseable or valid document), unreachable (not downloaded).
Status = Literal["pending", "valid", "invalid", "unreachable"]
STATUSES: Final[tuple[Status, ...]] = get_args(Status)

# What one collection attempt came to.
# 'error' is a failure that is not the document's fault (a worker killed, validation
# stopped on a busy machine): it never becomes the document's verdict.
Outcome = Literal["changed", "unchanged", "invalid", "unreachable", "refused", "error"]
OUTCOMES: Final[tuple[Outcome, ...]] = get_args(Outcome)

# What started a collection.
Trigger = Literal["registration", "refresh", "url-change", "schedule", "cli"]

SpecFormat = Literal["swagger-2.0", "openapi-3.0", "openapi-3.1"]

# What PostgreSQL text and jsonb cannot hold: NUL, and surrogates (in a Python string,
# a surrogate left over from JSON's \uXXXX escapes is always an unpaired one).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable_text(value: Any) -> str | None:
    """``value`` as text the catalog can store and search: NUL and unpaired surrogates
    become U+FFFD. None stays None."""
    if value is None:
        return None
    return _UNSTORABLE.sub("\ufffd", str(value))


# The operations of a path item, in the order OpenAPI lists them.
HTTP_METHODS: Final = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


class ValidationError(TypedDict):
    message: str
    # A JSON pointer into the document ('' is the whole document).
    path: str
    # The file the pointer is in, for a document split over several files.
    source: NotRequired[str]


@dataclass
class Analysis:
    """The verdict on one document's bytes, and what is extracted from a valid one."""

    spec_format: SpecFormat | None
    valid: bool
    errors: list[ValidationError]
    version: str | None = None
    title: str | None = None
    description: str | None = None
    # info.contact: who to ask, as the document says (name, email, an http(s) url).
    contact: dict[str, str] | None = None
    # The parsed document as JSON, keys in the order of the source; None when unparseable.
    content_json: str | None = None
    operations: list[dict[str, Any]] = field(default_factory=list)
    # The same, packed into one JSON array (pack_operations): what a worker sends.
    operations_json: str | None = None
    operations_count: int = 0
    # The other files the document refers to (its $refs as written): it is judged as
    # the bundle of them all, not alone.
    external: list[str] = field(default_factory=list)
    # The API design rules report (lint/): {"ruleset", "score", "findings"} for OpenAPI
    # 3.x, {"ruleset", "applicable": False} for Swagger 2.0; None when not linted.
    lint: dict[str, Any] | None = None
    # A stored document of these very bytes, whose verdict this is: its JSON and its
    # operations are copied inside PostgreSQL (content_json is then None), never
    # carried through the service and back.
    same_as: int | None = None

    def packed_operations(self) -> tuple[str, int]:
        """The operations as one JSON array, and how many: PostgreSQL reads the array
        as rows (store.queue.store_document)."""
        if self.operations_json is not None:
            return self.operations_json, self.operations_count
        return orjson.dumps(self.operations).decode(), len(self.operations)

    def pack_operations(self) -> None:
        """What a worker does before sending: 60,000 operations as dicts took 80 ms to
        unpickle in the service, holding the GIL (the event loop with it), and as long
        again to turn into query parameters; one string takes a few."""
        self.operations_json, self.operations_count = self.packed_operations()
        self.operations = []


@dataclass(frozen=True)
class Job:
    """One project leased for collection, with what the last collection left."""

    id: int
    name: str
    swagger_url: str
    http_etag: str | None
    http_last_modified: str | None
    current_sha256: bytes | None
    current_valid: bool | None
    consecutive_failures: int
    trigger: Trigger
    status: Status = "pending"
    published_document_id: int | None = None
    published_sha256: bytes | None = None
    # The ruleset the published version was linted with (None: never linted).
    published_ruleset: str | None = None
    # For a document bundled from several files: each file as it was bundled
    # ({"url", "sha256" (hex), "etag", "last_modified"}).
    current_sources: list[dict[str, str | None]] | None = None
    # What the project's subscribers are told the change was from.
    title: str | None = None
    published_version: str | None = None
    published_score: int | None = None


@dataclass
class Result:
    """What one collection came to, as it is recorded."""

    outcome: Outcome
    status: Status
    started_at: dt.datetime
    http_status: int | None = None
    error: str | None = None
    document_id: int | None = None
    changed: bool = False
    published: bool = False
    etag: str | None = None
    last_modified: str | None = None
    keep_cache_headers: bool = False
    # A document over the size at which the process hands memory back afterwards.
    large: bool = False
    # The new version, for the project's subscribers: its bytes' SHA-256, info.title
    # and info.version, what changed since the published one, its design rules score.
    sha256: bytes | None = None
    title: str | None = None
    version: str | None = None
    changes: list[dict[str, Any]] | None = None
    score: int | None = None

    @property
    def failed(self) -> bool:
        """Whether the next attempt backs off: anything but a valid document now."""
        return self.outcome == "error" or self.status != "valid"


class Busy(Exception):
    """Every validation worker for the job is busy and its waiting line is full."""


class TransientFailure(Exception):
    """Judging a document failed for a reason that is not the document's (a worker
    killed, a timeout on a busy machine): try again later, and record no verdict."""
