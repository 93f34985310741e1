"""Every long-lived resource of the app, reached through one typed key."""

from __future__ import annotations

import aiohttp
import asyncpg
import jinja2
from aiohttp import web

from .catalog.cache import CatalogCache
from .collector.service import Collector
from .collector.workers import ValidatorPool
from .metrics import Metrics
from .settings import Settings

SETTINGS = web.AppKey("settings", Settings)
POOL = web.AppKey("pool", asyncpg.Pool)
METRICS = web.AppKey("metrics", Metrics)
# The collector's one HTTP client session (with the network policy in its connector).
FETCH_SESSION = web.AppKey("fetch_session", aiohttp.ClientSession)
VALIDATORS = web.AppKey("validators", ValidatorPool)
COLLECTOR = web.AppKey("collector", Collector)
CATALOG_CACHE = web.AppKey("catalog_cache", CatalogCache)
TEMPLATES = web.AppKey("templates", jinja2.Environment)
