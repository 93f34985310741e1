"""The process's heap, as glibc keeps it (on Linux; elsewhere these do nothing)."""

from __future__ import annotations

import contextlib
import ctypes
import functools
from typing import Any

# mallopt's parameter for the most malloc arenas a process may have (malloc.h).
_M_ARENA_MAX = -8
# The main arena and one for every other thread of the process.
ARENAS = 2


@functools.cache
def _libc() -> Any:
    return ctypes.CDLL("libc.so.6")


def limit_arenas(arenas: int = ARENAS) -> None:
    """At most ``arenas`` malloc arenas for the whole process; called before any
    thread starts. glibc gives each thread that allocates an arena of its own, up
    to eight per core, and what is freed in one stays there for that arena alone.
    serve's threads (asyncio.to_thread: hashing, assembling the operation index,
    YAML) each kept one of 48 to 87 MB, mostly free: with the corpus stored twice,
    357 MB at rest, 224 MB with two arenas."""
    with contextlib.suppress(OSError, AttributeError):
        _libc().mallopt(_M_ARENA_MAX, arenas)


def release_memory() -> None:
    """Hand freed heap back to the system (glibc keeps it otherwise)."""
    with contextlib.suppress(OSError, AttributeError):
        _libc().malloc_trim(0)
