"""Headless Chromium for the browser tests, the fleet benchmark and the README screenshots.

Debian's ``chromium`` package (``make test-deps``), driven by the ``playwright`` package with
``executable_path``: nothing downloads a browser build. One place for its path and launch flags.
"""

from __future__ import annotations

import os
from typing import Any

CHROMIUM = os.environ.get("MLOOPS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # root in CI containers; the pages are our own, on loopback
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def launch(playwright: Any) -> Any:
    """The system Chromium, headless, under a started ``sync_playwright()``."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_FLAGS), headless=True)
