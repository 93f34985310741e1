"""Every long-lived resource of the app, reached through one typed key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg
from aiohttp import web

from .collector.service import Collector
from .indexes.catalog import CatalogIndex
from .indexes.operations import OperationIndex
from .metrics import Metrics
from .response_cache import ResponseCache
from .settings import Settings
from .store.db import Liveness
from .webhooks.delivery import Deliverer

if TYPE_CHECKING:  # (api imports these keys)
    from .api.plain_queries import PlainCall, PlainRead


@dataclass(frozen=True)
class Assembly:
    """How create_app was asked to assemble this app (tests switch parts off)."""

    run_scheduler: bool = True
    prestart_validators: bool = True


SETTINGS = web.AppKey("settings", Settings)
ASSEMBLY = web.AppKey("assembly", Assembly)
POOL = web.AppKey("pool", asyncpg.Pool)
# The collector's and the webhook sender's own connections: a burst of collections
# storing documents never keeps a request waiting for a connection.
BACKGROUND_POOL = web.AppKey("background_pool", asyncpg.Pool)
METRICS = web.AppKey("metrics", Metrics)
# Whether the database answers, for /api/health (one round trip shared by every check).
LIVENESS = web.AppKey("liveness", Liveness)
# The collector, with its HTTP session (the network policy) and validation workers.
COLLECTOR = web.AppKey("collector", Collector)
RESPONSE_CACHE = web.AppKey("response_cache", ResponseCache)
# Every catalog entry, serialised, for pages that miss the response cache.
CATALOG_INDEX = web.AppKey("catalog_index", CatalogIndex)
# Every published operation, serialised and searchable, for searches that miss it.
OPERATION_INDEX = web.AppKey("operation_index", OperationIndex)
# Sends the webhook outbox, as the collector's replica.
WEBHOOKS = web.AppKey("webhooks", Deliverer)
# URL path -> the plain checks of its query (api/plain_queries).
PLAIN_READS: web.AppKey[dict[str, PlainRead]] = web.AppKey("plain_reads")
# (method, route) -> the plain checks of a call (api/plain_queries).
PLAIN_CALLS: web.AppKey[dict[tuple[str, str], PlainCall]] = web.AppKey("plain_calls")
