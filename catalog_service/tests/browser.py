"""Headless Chromium (Debian's package) driven from the command line."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",  # root in CI
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


async def _chromium(*args: str, timeout: float = 90) -> bytes:
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        process = await asyncio.create_subprocess_exec(
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={profile}",
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
        assert process.returncode == 0, stderr.decode(errors="replace")[-2000:]
        return stdout


async def rendered_dom(url: str, *, budget_ms: int = 15000, lang: str = "en-GB") -> str:
    """The DOM after the page's scripts ran (virtual time lets them settle), in a
    browser that asks for pages in ``lang``."""
    return (
        await _chromium(f"--virtual-time-budget={budget_ms}", f"--accept-lang={lang}", "--dump-dom", url)
    ).decode()


async def screenshot(
    url: str,
    path: Path,
    *,
    width: int = 1280,
    height: int = 1400,
    budget_ms: int = 15000,
    lang: str = "en-GB",
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    await _chromium(
        f"--virtual-time-budget={budget_ms}",
        f"--window-size={width},{height}",
        f"--accept-lang={lang}",
        f"--screenshot={path}",
        url,
    )
    assert path.stat().st_size > 10_000
