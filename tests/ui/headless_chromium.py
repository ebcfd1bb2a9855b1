"""What the browser tests share: Debian chromium driven by Playwright, or a skip saying what is missing."""

import shutil

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def require_browser():
    """Playwright's sync API, at a test module's import; the module is skipped without Playwright or chromium."""
    playwright_sync = pytest.importorskip("playwright.sync_api")
    if not shutil.which("chromium"):
        pytest.skip("Debian chromium is not installed (scripts/setup.sh installs it)", allow_module_level=True)
    return playwright_sync
