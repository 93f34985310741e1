"""serve's heap: glibc's arenas are limited, so memory a thread frees is not stranded."""

from __future__ import annotations

import subprocess
import sys

# Eight threads allocating at once, then how many arenas glibc made (its malloc_info).
THREADS = """
import ctypes, re, sys, tempfile, threading
from catalog_service.memory import limit_arenas
if sys.argv[1] == "limited":
    limit_arenas()
together = threading.Barrier(8)
def work():
    together.wait()
    blocks = [bytearray(50_000) for _ in range(200)]
    together.wait()
    del blocks
threads = [threading.Thread(target=work) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
libc = ctypes.CDLL("libc.so.6")
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
with tempfile.NamedTemporaryFile(suffix=".xml") as out:
    handle = libc.fopen(out.name.encode(), b"w")
    libc.malloc_info(0, handle)
    libc.fclose(handle)
    print(len(re.findall(rb"<heap nr=", open(out.name, "rb").read())))
"""


def arenas(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", THREADS, mode], capture_output=True, text=True, check=True)
    return int(done.stdout)


def test_threads_share_two_arenas_once_limited() -> None:
    assert arenas("default") > 2  # glibc's own way: an arena for each thread that allocates
    assert arenas("limited") <= 2
