"""Headless Debian Chromium on the ZenML dashboard, for the dashboard, serving and server tests (playwright drives
the system browser: it cannot download its own here). Only the given local addresses are let through: the
dashboard's outside calls (fonts, news) would just hang offline."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def require_chromium() -> None:
    """Skip without the browser, or fail where TWINSFT_REQUIRE_DASHBOARD=1 (CI) says it must be there."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("TWINSFT_REQUIRE_DASHBOARD") == "1":
            pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
        pytest.skip(f"{CHROMIUM} is missing")


@contextmanager
def dashboard_page(allowed: str | tuple[str, ...]) -> Iterator[Any]:
    """A 1400x900 page whose requests reach only URLs starting with `allowed`; the browser closes after."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(allowed) else r.abort())
            yield page
        finally:
            browser.close()


def screenshot_run_graph(base: str, run_id: str, names: Sequence[str], shot: Path, texts: Sequence[str] = ()) -> Path:
    """The dashboard's page of a run, once its DAG shows every node in `names` and the page every one of `texts`,
    saved as a PNG (and copied to $TWINSFT_SCREENSHOT_DIR when set)."""
    with dashboard_page(base) as page:
        page.goto(f"{base}/projects/default/runs/{run_id}", wait_until="domcontentloaded", timeout=120_000)
        graph = page.locator(".react-flow")
        graph.wait_for(timeout=120_000)
        for name in names:
            graph.get_by_text(name, exact=True).first.wait_for(timeout=60_000)
        for text in texts:
            page.get_by_text(text).first.wait_for(timeout=60_000)
        page.screenshot(path=str(shot), animations="disabled", timeout=120_000)
    return checked_screenshot(shot)


def checked_screenshot(shot: Path) -> Path:
    """A PNG with something on it (a blank page is smaller), copied to $TWINSFT_SCREENSHOT_DIR when set."""
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    if os.environ.get("TWINSFT_SCREENSHOT_DIR"):
        shutil.copy(shot, Path(os.environ["TWINSFT_SCREENSHOT_DIR"]) / shot.name)
    return shot
