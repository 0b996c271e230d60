"""The dashboard in a real browser: Debian's Chromium, driven by Playwright, against plumbline
server with the local backend (real R replicas behind HAProxy).

An admin signs in with a key; a version deployed through the API appears and becomes ready
while the page watches; a rollback is confirmed in the page and its task's output streams;
the traffic chart moves after requests; Swagger UI under a vanity path calls through it; a key
made in the page is refused once revoked there.
A viewer signs in with a password at phone width and finds no button that changes anything
(and the API refuses them). Every request the page makes goes to the server itself.

One server serves the module; the tests run in file order.
"""

from __future__ import annotations

import re

import httpx
import pytest
from browser import DESKTOP, browser_available, chromium, try_it_out
from dashboard_harness import PHONE, bundle, local_server, screenshot, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not browser_available(), reason="chromium or playwright missing"),
    pytest.mark.xdist_group("server_dashboard_browser"),  # one server, tests in file order
]

PASSWORD = "viewer passphrase 42"
WAIT = 120_000  # ms: a rollout starts R in new replicas on a busy machine


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with local_server(tmp_path_factory.mktemp("dashboard"), metrics_interval=1) as srv:
        srv.admin_key = srv.user("ada", "admin")
        admin = srv.client(srv.admin_key)
        srv.app = admin.post(
            "/__api__/v1/apps", json={"name": "parity-api", "title": "Parity"}
        ).json()
        other = admin.post("/__api__/v1/apps", json={"name": "weather-api"}).json()
        srv.other = other
        yield srv


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def page_for(browser, server, viewport):
    """A fresh browser context (no cookies) and a page that records where it connects."""
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(WAIT)
    page.requests = []
    page.errors = []
    page.on("request", lambda request: page.requests.append(request.url))
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    return context, page


def sign_in_with_key(page, server, key: str) -> None:
    page.goto(server.url + "/")
    page.fill("#signin-key", key)
    page.click("#signin-key-form button[type=submit]")
    page.wait_for_selector("#apps-table")


def deploy(server, version: int) -> dict:
    """A new version through the API (as rsconnect or `plumbline publish` would)."""
    admin = server.client(server.admin_key)
    app_id = server.app["id"]
    made = admin.post(f"/__api__/v1/apps/{app_id}/bundles", content=bundle(version))
    assert made.status_code == 200, made.text
    task = admin.post(f"/__api__/v1/apps/{app_id}/deploy", json={"bundle_id": made.json()["id"]})
    assert task.status_code == 202, task.text
    return {"bundle_id": made.json()["id"], "task_id": task.json()["task_id"]}


def call_app(server, path: str) -> httpx.Response:
    url = server.config.apps_url.rstrip("/") + f"/content/parity-api{path}"
    return httpx.get(url, headers={"Authorization": f"Key {server.admin_key}"}, timeout=60)


def test_admin_watches_deploys_rolls_back_sees_traffic_and_revokes_a_key(server, browser, tmp_path):
    context, page = page_for(browser, server, DESKTOP)
    screenshot_dir = tmp_path
    page.goto(server.url + "/")
    page.wait_for_selector("#signin-key-form")
    screenshot(page, screenshot_dir, "dashboard-sign-in")
    sign_in_with_key(page, server, server.admin_key)

    # The app list: both apps, not deployed yet; the search filters as one types.
    row = page.locator('tr[data-app="parity-api"]')
    row.wait_for()
    assert row.locator("[data-health]").get_attribute("data-health") == "not deployed"
    assert page.locator("#apps-body tr").count() == 2
    page.fill("#app-search", "weath")
    wait_until(page, "document.querySelectorAll('#apps-body tr').length === 1")
    assert page.locator('tr[data-app="weather-api"]').count() == 1
    page.fill("#app-search", "")

    # A version deployed through the API appears on the open page and becomes ready.
    page.click('tr[data-app="parity-api"] a.app-name')
    page.click('[data-tab="versions"]')
    page.wait_for_selector("#versions")
    first = deploy(server, 1)
    page.wait_for_selector(f'tr[data-version="{first["bundle_id"]}"]')
    page.wait_for_selector(f'tr[data-version="{first["bundle_id"]}"][data-active="yes"]')
    page.wait_for_selector(".app-head [data-health=healthy]")
    assert page.inner_text("#replica-count") == "1/1 ready"
    row = page.locator(f'tr[data-version="{first["bundle_id"]}"]')
    assert "ada" in row.inner_text() and "KiB" in row.inner_text() or "bytes" in row.inner_text()
    row.locator("details summary").click()
    assert "plumber" in row.locator(".packages").inner_text()  # from manifest.json

    second = deploy(server, 2)
    page.wait_for_selector(f'tr[data-version="{second["bundle_id"]}"][data-active="yes"]')
    page.wait_for_selector(".app-head [data-health=healthy]")
    assert call_app(server, "/hello").text == "hello v2"
    screenshot(page, screenshot_dir, "dashboard-versions")

    # Roll back in the page: a confirmation, then the task's output as it streams.
    page.click(f'button[data-action="roll-back"][data-version="{first["bundle_id"]}"]')
    dialog = page.locator("#confirm")
    assert dialog.is_visible() and "Roll back parity-api" in dialog.inner_text()
    page.click("#confirm-ok")
    page.wait_for_selector("#task-log")
    wait_until(
        page, "document.querySelector('#task-log').textContent.includes('Rolling back parity-api')"
    )
    page.wait_for_selector('#task-state[data-state="done"]')
    assert "Serving bundle" in page.inner_text("#task-log")
    page.wait_for_selector(f'tr[data-version="{first["bundle_id"]}"][data-active="yes"]')
    assert call_app(server, "/hello").text == "hello v1"

    # Traffic: the requests/s chart moves after requests (scraped every second).
    page.click('[data-tab="traffic"]')
    page.wait_for_selector('figure[data-chart="rps"]')
    page.select_option("#range", "5")  # 2 s steps: the bursts below draw a line
    counted = (
        'Number((document.querySelector(\'#endpoint-table tr[data-route="/hello"] '
        "td:nth-child(2)') || {}).textContent || 0)"
    )
    page.wait_for_selector("#traffic-source")
    before = page.evaluate(counted)
    for burst in range(5):
        for _ in range(4 + 3 * burst):
            assert call_app(server, "/hello").status_code == 200
        assert call_app(server, "/boom").status_code == 500
        assert call_app(server, "/slow").status_code == 200
        page.wait_for_timeout(1500)
    wait_until(page, "Number(document.querySelector('figure[data-chart=rps]').dataset.peak) > 0")
    page.wait_for_selector("#endpoint-table")
    wait_until(page, f"{counted} >= {before + 50}")  # all 50 requests to /hello are counted
    wait_until(
        page,
        "['/hello', '/boom', '/slow'].every(r => "
        "document.querySelector('#endpoint-table').textContent.includes(r))",
    )
    # one request in each burst failed: the error rate rose above zero somewhere in the range
    assert float(page.get_attribute('figure[data-chart="errors"]', "data-peak")) > 0
    assert "100 %" in page.inner_text('#endpoint-table tr[data-route="/boom"]')
    assert page.locator('figure[data-chart="latency"] path.line').count() == 2
    assert "Read from 1 replica" in page.inner_text("#traffic-source")
    screenshot(page, screenshot_dir, "dashboard-traffic")

    # The overview: scale to two replicas, then a rolling restart, each confirmed.
    page.click('[data-tab="overview"]')
    page.wait_for_selector("#replicas")
    page.fill("#scale-to", "2")
    page.click("#scale")
    assert "Run 2 replicas" in page.inner_text("#confirm")
    page.click("#confirm-ok")
    page.wait_for_selector('#task-state[data-state="done"]')
    wait_until(page, "document.querySelector('#replica-count').textContent === '2/2 ready'")
    before = set(page.locator("#replicas tbody td:first-child").all_inner_texts())
    page.click("#restart")
    page.click("#confirm-ok")
    page.wait_for_selector("#task-log")
    page.wait_for_selector('#task-state[data-state="done"]')
    names = (
        "[...document.querySelectorAll('#replicas tbody td:first-child')].map(e => e.textContent)"
    )
    wait_until(  # every replica was replaced, and two serve
        page, f"(n => n.length === 2 && !n.some(x => {sorted(before)}.includes(x)))({names})"
    )
    page.wait_for_selector(".app-head [data-health=healthy]")
    screenshot(page, screenshot_dir, "dashboard-app")

    # Access: a collaborator by name, and the app made public (no key needed any more).
    server.user("bea", "publisher")
    page.click('[data-tab="access"]')
    page.fill("#grant-user", "bea")
    page.click("#add-grant button[type=submit]")
    page.wait_for_selector('#grants-body tr[data-user="bea"]')
    assert "collaborator" in page.inner_text('#grants-body tr[data-user="bea"]')
    apps_url = server.config.apps_url.rstrip("/") + "/content/parity-api/hello"
    assert httpx.get(apps_url, timeout=30).status_code == 401
    page.check('#access-type input[value="all"]')
    page.click("#save-access")
    page.click("#confirm-ok")
    page.wait_for_selector('#task-state[data-state="done"]')
    assert httpx.get(apps_url, timeout=30).text == "hello v1"
    # A vanity path: refused with the server's reason, then set and served there too.
    page.fill("#vanity-path", "/content/mine/")
    page.click("#save-vanity")
    page.wait_for_selector("text=/content belongs to the server")
    page.fill("#vanity-path", "/hello-team/")
    page.click("#save-vanity")
    page.wait_for_selector("#task-log:has-text('no replica restarted')")  # its own task's
    page.wait_for_selector('#task-state[data-state="done"]')
    vanity_url = server.config.apps_url.rstrip("/") + "/hello-team/"
    wait_until(
        page, f"(document.querySelector('#vanity-url') || {{}}).textContent === '{vanity_url}'"
    )
    assert httpx.get(vanity_url + "hello", timeout=30).text == "hello v1"
    # Swagger UI opened under the vanity path calls the API through it, though HAProxy
    # strips the path and the replicas were never told of it.
    docs = browser.new_page()
    docs.set_default_timeout(WAIT)
    docs.goto(vanity_url + "__docs__")
    assert try_it_out(docs, "/hello") == (vanity_url + "hello", "hello v1")
    docs.close()
    page.click('[data-nav="apps"]')
    page.wait_for_selector('tr[data-app="parity-api"] [data-health="healthy"]')
    screenshot(page, screenshot_dir, "dashboard-apps")

    # Keys: one made in the page works until it is revoked there.
    page.click('[data-nav="keys"]')
    page.fill("#key-name", "ci")
    page.click("#create-key button[type=submit]")
    key = page.inner_text("#new-key-value").strip()
    assert key.startswith("plk_")
    api = httpx.Client(base_url=server.url, headers={"Authorization": f"Key {key}"}, timeout=30)
    assert api.get("/__api__/v1/user").json()["username"] == "ada"
    page.wait_for_selector('tr[data-key="ci"][data-active="yes"]')
    screenshot(page, screenshot_dir, "dashboard-keys")
    page.click('button[data-revoke="ci"]')
    page.click("#confirm-ok")
    page.wait_for_selector('tr[data-key="ci"][data-active="no"]')
    refused = api.get("/__api__/v1/user")
    assert refused.status_code == 401 and "revoked" in refused.json()["error"]

    # Everything the page loaded came from the server itself: no CDN, no fonts elsewhere.
    foreign = [url for url in page.requests if not url.startswith(server.url + "/")]
    assert foreign == [] and page.errors == []
    assert any(url.endswith("/static/charts.js") for url in page.requests)
    context.close()


def test_a_viewer_on_a_phone_sees_everything_and_no_change_button(server, browser, tmp_path):
    admin = server.client(server.admin_key)
    viewer = admin.post("/__api__/v1/users", json={"username": "vic", "role": "viewer"}).json()
    admin.put(f"/__api__/v1/users/{viewer['id']}/password", json={"password": PASSWORD})
    app_id = server.app["id"]
    admin.put(f"/__api__/v1/apps/{app_id}/permissions/{viewer['id']}", json={"role": "viewer"})

    context, page = page_for(browser, server, PHONE)
    page.goto(server.url + "/")
    page.fill("#signin-username", "vic")
    page.fill("#signin-password", PASSWORD)
    page.click("#signin-password-form button[type=submit]")
    page.wait_for_selector('tr[data-app="parity-api"] [data-health="healthy"]')
    assert page.locator('tr[data-app="weather-api"]').count() == 0  # not shared with vic
    assert page.locator("details.create").count() == 0  # viewers create no apps
    # At phone width the table is a stack of cards, each cell labelled.
    assert (
        page.evaluate("getComputedStyle(document.querySelector('#apps-table thead')).display")
        == "none"
    )
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways ({width}px)"
    screenshot(page, tmp_path, "dashboard-apps-phone")

    page.click('tr[data-app="parity-api"] a.app-name')
    page.wait_for_selector("#replicas")
    for tab in ("overview", "versions", "access"):
        page.click(f'[data-tab="{tab}"]')
        page.wait_for_selector(f"#tab-{tab}")
        page.wait_for_timeout(500)  # let the page's first poll land
        for selector in (
            "#restart",
            "#scale",
            "#upload",
            "[data-action]",
            "#save-access",
            "#save-vanity",
            "#add-grant",
            "#delete-app",
            "#grants-body button",
        ):
            assert page.locator(selector).count() == 0, (tab, selector)
        if tab == "overview":
            screenshot(page, tmp_path, "dashboard-app-phone")
        if tab == "versions":
            page.wait_for_selector("#versions-body tr")
    page.click('[data-tab="traffic"]')
    page.wait_for_selector('figure[data-chart="rps"]')
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(page, tmp_path, "dashboard-traffic-phone")
    page.click('[data-tab="logs"]')
    assert "owner" in page.inner_text("#tab-logs")

    # The buttons are absent, and the API says 403 to the viewer's session all the same.
    answer = page.evaluate(
        """async (id) => {
            const session = await (await fetch('/__api__/v1/session')).json();
            const r = await fetch(`/__api__/v1/apps/${id}/restart`, {method: 'POST',
                headers: {'X-CSRF-Token': session.csrf_token}});
            return [r.status, (await r.json()).error];
        }""",
        app_id,
    )
    assert answer[0] == 403 and "vic is a viewer" in answer[1]
    # The session cookie is out of the page scripts' reach (HttpOnly).
    assert "plumbline_session" not in page.evaluate("document.cookie")
    cookie = next(c for c in context.cookies() if c["name"] == "plumbline_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    page.click("#sign-out")
    page.wait_for_selector("#signin-key-form")
    assert re.search(r"signed out", page.inner_text("main"), re.I)
    foreign = [url for url in page.requests if not url.startswith(server.url + "/")]
    assert foreign == [] and page.errors == []
    context.close()
