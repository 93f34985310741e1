from __future__ import annotations

import asyncio

from aiohttp import web

from ..api.problems import DATABASE_ERRORS
from ..errors import Unavailable
from ..keys import POOL


async def health(request: web.Request) -> tuple[dict[str, str], int]:
    try:
        async with asyncio.timeout(3):
            await request.config_dict[POOL].fetchval("SELECT 1")
    except DATABASE_ERRORS:
        raise Unavailable("the database cannot be reached") from None
    return {"status": "ok", "database": "ok"}, 200
