"""Swagger UI of a key-only app, in a real browser (Debian's Chromium) against a real
`plumbline serve --access keys`: the page opens without a key and asks for one, refuses a key
the app does not allow with the app's reason, then documents the API and calls it ("Try it
out") with the key, which it keeps nowhere but in the page. Nothing else opens without a key,
however the path is spelled."""

from __future__ import annotations

import hashlib
import json

import pytest
from browser import WAIT, browser_available, chromium, try_it_out
from serve_harness import serve

pytestmark = pytest.mark.slow

KEY = "plk_" + "d" * 40
OTHER = "plk_" + "x" * 40


def key_only(tmp_path, *options: str):
    digest = hashlib.sha256(KEY.encode()).hexdigest()
    return serve(tmp_path, "--workers", "1", "--access", "keys", "--access-keys", digest, *options)


def test_only_the_docs_page_opens_without_a_key(tmp_path):
    with key_only(tmp_path) as app:
        for path in ("/__docs__/", "/__docs__/swagger-initializer.js", "/__docs__/index.css"):
            assert app.get(path)[0] == 200, path
        status, headers, _ = app.get("/__docs__")
        assert status == 307 and headers["location"] == "__docs__/"
        # the API's description and anything else stay behind the key
        for path in ("/openapi.json", "/parity?int=2", "/%5F%5Fdocs__/", "/%6Civez", "/metrics"):
            status, _, body = app.get(path)
            assert status == 401 and "Authorization: Key" in json.loads(body)["error"], path
        assert app.get("/__docs__/", method="POST")[0] == 401  # reads only
        assert app.get("/livez")[0] == 200
    with key_only(tmp_path, "--docs", "off") as app:  # no docs: nothing opens
        assert app.get("/__docs__/")[0] == 401


@pytest.mark.skipif(not browser_available(), reason="chromium or playwright missing")
def test_swagger_ui_asks_for_the_key_and_calls_with_it(tmp_path):
    with key_only(tmp_path) as app, chromium() as browser:
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(WAIT)
        page.goto(f"http://127.0.0.1:{app.port}/__docs__/")
        page.wait_for_selector("#plumbline-key-value")
        assert page.locator(".opblock").count() == 0  # nothing documented without a key

        page.fill("#plumbline-key-value", OTHER)
        page.click("#plumbline-key button[type=submit]")
        page.wait_for_selector("#plumbline-key-message:has-text('this key may not call this API')")
        assert page.locator(".opblock").count() == 0

        page.fill("#plumbline-key-value", KEY)
        page.click("#plumbline-key button[type=submit]")
        page.wait_for_selector(".opblock-summary-path[data-path='/parity']")
        assert page.is_hidden("#plumbline-key")
        url, body = try_it_out(page, "/parity", {"int": "7"})
        assert (url, body) == (f"http://127.0.0.1:{app.port}/parity?int=7", "odd")
        # the key lives in the page only: no storage, no cookie
        assert page.evaluate("localStorage.length + sessionStorage.length") == 0
        assert context.cookies() == []
        page.reload()
        page.wait_for_selector("#plumbline-key-value")  # asked again
        context.close()


@pytest.mark.skipif(not browser_available(), reason="chromium or playwright missing")
def test_a_public_apps_docs_ask_for_nothing(tmp_path):
    with serve(tmp_path, "--workers", "1") as app, chromium() as browser:
        page = browser.new_page()
        page.set_default_timeout(WAIT)
        page.goto(f"http://127.0.0.1:{app.port}/__docs__/")
        url, body = try_it_out(page, "/parity", {"int": "4"})
        assert (url, body) == (f"http://127.0.0.1:{app.port}/parity?int=4", "even")
        assert page.is_hidden("#plumbline-key")
