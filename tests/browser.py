"""Debian's Chromium driven by Playwright, for the tests that use a real browser (the
dashboard, Swagger UI). Playwright's own browser download is never used."""

from __future__ import annotations

import contextlib
import os

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 860}
WAIT = 120_000  # ms: R starting on a busy machine


def browser_available() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return os.access(CHROMIUM, os.X_OK)


@contextlib.contextmanager
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def try_it_out(page, path: str, params: dict[str, str] | None = None):
    """Swagger UI, open in `page`: open GET `path`, "Try it out", fill `params`, "Execute";
    the request URL it shows and the body it got."""
    page.click(f".opblock-summary-path[data-path='{path}']")
    page.click(".try-out__btn")
    for name, value in (params or {}).items():
        page.fill(f"input[placeholder='{name}']", value)
    page.click(".execute")
    page.wait_for_selector(".live-responses-table")
    answer = ".live-responses-table .response-col_description pre"
    return page.inner_text(".request-url pre"), page.inner_text(answer)
