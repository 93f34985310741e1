"""Every long-lived resource of the app, reached through one typed key."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from .settings import Settings

SETTINGS = web.AppKey("settings", Settings)
POOL = web.AppKey("pool", asyncpg.Pool)
