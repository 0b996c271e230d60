"""plumbline vs real plumber 1.2.1 on the example APIs that ship with plumber (01 ... 17).

One pair of servers per class (see the `pair` fixture in conftest.py). Apps that keep state in
globals (01-append, 07-mailgun, 11-car-inventory) run with one worker: globals live in each
worker process (docs/compatibility.md), and a single worker shows the R code sees them exactly
as under plumber.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from compat_harness import APPS, assert_405_with_allow, assert_same, deliberate

pytestmark = pytest.mark.slow

# Sys.time() as printed / serialized, and date() ("Mon Nov 23 18:14:06 2026").
TIME = re.compile(
    rb"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?( [A-Z]{3,4})?"
    rb"|[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}"
)


def mask_time(body: bytes) -> bytes:
    return TIME.sub(b"<time>", body)


def session_cookie_shape(set_cookie: str) -> str:
    """An encrypted session cookie (random nonce) as its name and attributes, value masked."""
    name, _, rest = set_cookie.partition("=")
    return name + "=<encrypted>;" + rest.partition(";")[2]


def assert_405(ex, allowed: str) -> None:
    assert_405_with_allow(ex, allowed)


# Paths under an @assets mount with a `..` or `.` segment (plain or encoded), an encoded
# slash or backslash, or a NUL: docs/serve.md promises 403 for each, before the disk is
# touched. plumber answers 404 for the ways out, serves `.` segments (200) and fails on a
# NUL (500).
LEAVING_THE_FOLDER = [
    ("/static/../plumber.R", 404),
    ("/static/%2e%2e/plumber.R", 404),
    ("/static/%2E%2E/plumber.R", 404),
    ("/static/..%2fplumber.R", 404),
    ("/static/..%2Fplumber.R", 404),
    ("/static/..%5cplumber.R", 404),
    ("/static/./a.html", 200),
    ("/static/%2e/a.html", 200),
    ("/static/a.html%00", 500),
    ("/static/a.html%00.txt", 500),
    ("/static/%00../plumber.R", 500),
    ("/static/..%00/plumber.R", 500),
]


def assert_refused_with_403(ex, plumber_status: int) -> None:
    assert ex.plumber.status_code == plumber_status, ex.describe()
    deliberate("an @assets path with a dot segment, encoded slash or NUL is refused with 403")
    assert ex.plumbline.status_code == 403, ex.describe()
    assert ex.plumbline.headers["content-type"] == "application/json", ex.describe()
    assert ex.plumbline.json() == {"error": "forbidden path"}, ex.describe()


def json_form(data: dict) -> dict:
    return {"content": json.dumps(data).encode(), "headers": {"content-type": "application/json"}}


class TestAppend:
    EXAMPLE = "01-append"
    WORKERS = 1  # /append changes a global that /tail reads

    def test_tail_default_and_n(self, pair):
        pair.compare("GET", "/tail", status=200)
        pair.compare("GET", "/tail?n=1", status=200)

    def test_tail_bad_n(self, pair):
        pair.compare("GET", "/tail?n=abc", status=400)
        pair.compare("GET", "/tail?n=0", status=400)
        pair.compare("GET", "/tail?n=1000", status=400)

    def test_append_from_json_form_and_query_then_tail(self, pair):
        pair.compare("POST", "/append", status=200, **json_form({"val": 42}))
        pair.compare("POST", "/append", status=200, data={"val": "7"})
        pair.compare("POST", "/append?val=3", status=200)
        # 400 status, value kept (as plumber)
        pair.compare("POST", "/append", status=400, data={"val": "abc"})
        pair.compare("GET", "/tail?n=5", status=200)

    def test_append_without_value_is_an_error(self, pair):
        pair.compare("POST", "/append", status=500)

    def test_graph_png(self, pair):
        ex = pair.compare("GET", "/graph", status=200)  # same R, same device: the same bytes
        assert ex.plumbline.content.startswith(b"\x89PNG"), ex.describe()

    def test_wrong_method_and_unknown_route(self, pair):
        assert_405(pair.send("GET", "/append"), "POST")
        pair.compare("GET", "/nope", status=404)
        pair.compare("POST", "/tail/extra", status=404)


class TestFilters:
    EXAMPLE = "02-filters"

    def test_preempted_endpoint_needs_no_login(self, pair):
        pair.compare("GET", "/about", status=200)

    def test_login_required(self, pair):
        pair.compare("GET", "/me", status=401)

    def test_known_users(self, pair):
        pair.compare("GET", "/me?username=joe", status=200)
        pair.compare("GET", "/me?username=kim", status=200)

    def test_unknown_user_is_an_error_in_the_filter(self, pair):
        pair.compare("GET", "/me?username=bob", status=500)

    def test_filters_run_before_404_and_405(self, pair):
        # With filters, unknown routes and wrong verbs go through the app's filters first.
        pair.compare("GET", "/nope", status=401)
        pair.compare("GET", "/nope?username=joe", status=404)
        pair.compare("POST", "/about", status=401)
        ex = pair.compare("POST", "/about?username=joe", status=405, present=("allow",))
        assert ex.plumbline.headers["allow"] == ""  # plumber's, since R answers

    def test_filters_answer_before_a_malformed_body_is_parsed(self, pair):
        # plumber parses the body only at the endpoint, after the filters: an unauthenticated
        # client gets the filter's 401 whatever it sent.
        bad = {"content": b'{"broken', "headers": {"content-type": "application/json"}}
        pair.compare("GET", "/me", status=401, **bad)
        pair.compare("GET", "/me?username=bob", status=500, **bad)


class TestGithub:
    """03-github: /version is local; POST /update would call GitHub, but it fails before that
    (no github-key.txt), so only the failure is compared."""

    EXAMPLE = "03-github"

    def test_version(self, pair):
        pair.compare("GET", "/version", status=200)

    def test_update_without_secret_file_fails_the_same(self, pair):
        pair.compare(
            "POST", "/update", status=500, content=b"{}", headers={"X-Hub-Signature": "sha1=00"}
        )


class TestMeanSum:
    EXAMPLE = "04-mean-sum"

    def test_mean_is_one_number(self, pair):
        shape = lambda body: [type(v).__name__ for v in json.loads(body)]  # noqa: E731  rnorm
        pair.compare("GET", "/mean", status=200, body=shape)
        pair.compare("GET", "/mean?samples=5", status=200, body=shape)

    def test_mean_bad_samples(self, pair):
        pair.compare("GET", "/mean?samples=abc", status=500)

    def test_sum_json_form_query(self, pair):
        pair.compare("POST", "/sum", status=200, **json_form({"a": 1, "b": 2.5}))
        pair.compare("POST", "/sum", status=200, data={"a": "4", "b": "5"})
        pair.compare("POST", "/sum?a=1&b=2", status=200)
        pair.compare("POST", "/sum?a=1", status=200, data={"b": "10"})

    def test_sum_bad_input(self, pair):
        pair.compare("POST", "/sum", status=200, data={"a": "x", "b": "1"})
        pair.compare("POST", "/sum", status=500, data={"a": "1"})
        pair.compare(
            "POST", "/sum", status=500, content=b"a=1&b=2", headers={"content-type": "text/plain"}
        )


class TestStatic:
    EXAMPLE = "05-static"

    def test_endpoint(self, pair):
        pair.compare("GET", "/", status=200)

    # `#* @assets ./files` without a mount path is served at /public, as plumber does.
    @pytest.mark.parametrize(
        "path", ["/public/a.html", "/public/b.txt", "/static/a.html", "/static/b.txt"]
    )
    def test_assets(self, pair, path):
        pair.compare("GET", path, status=200)

    @pytest.mark.parametrize(
        "path",
        [
            "/a.html",
            "/static/nope.txt",
            "/public/nope.txt",
            "/static",
            "/static/",
            "/public/",
            "/static/A.HTML",
        ],
    )
    def test_missing_assets(self, pair, path):
        pair.compare("GET", path, status=404)

    def test_asset_wrong_method(self, pair):
        ex = pair.send("POST", "/static/a.html")
        assert (ex.plumber.status_code, ex.plumber.content) == (400, b"<h1>Bad Request</h1>")
        deliberate("a write to an @assets folder is 405 with Allow")
        assert ex.plumbline.status_code == 405, ex.describe()
        assert ex.plumbline.headers["allow"] == "GET, HEAD"
        assert ex.plumbline.content == b'{"error":"405 - Method Not Allowed"}'

    @pytest.mark.parametrize("path, plumber_status", LEAVING_THE_FOLDER)
    def test_no_file_outside_the_folder(self, pair, path, plumber_status):
        assert_refused_with_403(pair.send("GET", path), plumber_status)


class TestSessions:
    EXAMPLE = "06-sessions"

    def test_counter_cookie(self, pair):
        ex = pair.compare("GET", "/counter", status=200, present=("set-cookie",))
        assert ex.plumbline.headers["set-cookie"].startswith("visitcounter=1")
        pair.compare(
            "GET",
            "/counter",
            status=200,
            headers={"Cookie": "visitcounter=41"},
            present=("set-cookie",),
        )

    def test_encrypted_session_round_trip(self, pair):
        # The session cookie is encrypted with a random nonce: each server gets its own back.
        for which in ("plumber", "plumbline"):
            first = pair.request(which, "GET", "/sessionCounter")
            assert (first.status_code, first.text) == (200, '["This is visit #0"]'), which
            cookie = first.cookies["cookieName"]
            second = pair.request(
                which, "GET", "/sessionCounter", headers={"Cookie": f"cookieName={cookie}"}
            )
            assert second.text == '["This is visit #1"]', which

    def test_tampered_session_cookie(self, pair):
        # A new session cookie, encrypted with a random nonce: its value differs by nature.
        pair.compare(
            "GET",
            "/sessionCounter",
            status=200,
            headers={"Cookie": "cookieName=not-a-real-session"},
            present=("set-cookie",),
            masks={"set-cookie": session_cookie_shape},
        )

    # `#* @assets static` without a mount path is served at /public.
    @pytest.mark.parametrize(
        "path, status",
        [
            ("/public/iframe.html", 200),
            ("/public/js-cookie.js", 200),
            ("/public/iframe-secure.html", 200),
            ("/public/nope.js", 404),
            ("/iframe.html", 404),
        ],
    )
    def test_assets(self, pair, path, status):
        pair.compare("GET", path, status=status)

    def test_asset_wrong_method_reaches_r(self, pair):
        # The `#* @plumber` block means R may answer anything, so plumber's own answer (400).
        pair.compare("POST", "/public/iframe.html", status=400)

    # Refused in Python even though R sees every other request (docs/compatibility.md).
    @pytest.mark.parametrize(
        "path, plumber_status",
        [
            (path.replace("/static/", "/public/").replace("a.html", "iframe.html"), status)
            for path, status in LEAVING_THE_FOLDER
        ],
    )
    def test_no_file_outside_the_folder(self, pair, path, plumber_status):
        assert_refused_with_403(pair.send("GET", path), plumber_status)


class TestMailgun:
    """07-mailgun: mailgun posts to /mail from the internet; the endpoint itself is local."""

    EXAMPLE = "07-mailgun"
    WORKERS = 1
    NEEDS = ("htmltools",)

    def test_empty_tail(self, pair):
        pair.compare("GET", "/tail", status=200)

    def test_mail_then_tail(self, pair):
        pair.compare(
            "POST", "/mail", status=200, data={"from": "a@b.c", "subject": "<b>hi</b> & bye"}
        )
        pair.compare("GET", "/tail", status=200, body=mask_time)

    def test_mail_missing_subject(self, pair):
        pair.compare("POST", "/mail", status=500, data={"from": "a@b.c"})


class TestIdentity:
    EXAMPLE = "08-identity"

    def test_name(self, pair):
        pair.compare("GET", "/name", status=200)


class TestContentType:
    EXAMPLE = "09-content-type"

    def test_pdf(self, pair):
        # a PDF embeds its creation time
        ex = pair.compare("GET", "/pdf", status=200, body="ignore")
        assert ex.plumbline.content.startswith(b"%PDF")

    @pytest.mark.parametrize("path", ["/text", "/html"])
    def test_text_and_html(self, pair, path):
        pair.compare("GET", path, status=200)

    def test_download_binary(self, pair):
        pair.compare("GET", "/download-binary", status=200)


class TestWelcome:
    EXAMPLE = "10-welcome"

    def test_html(self, pair):
        pair.compare("GET", "/", status=200)

    def test_unknown_and_wrong_method(self, pair):
        pair.compare("GET", "/index.html", status=404)
        assert_405(pair.send("DELETE", "/"), "GET")


FIRST_CAR = 12049293  # the first id of the example's inventory.csv


class TestCarInventory:
    EXAMPLE = "11-car-inventory"
    WORKERS = 1  # POST/PUT/DELETE change the inventory global

    def test_list_and_get(self, pair):
        pair.compare("GET", "/car/", status=200)
        pair.compare("GET", f"/car/{FIRST_CAR}", status=200)
        pair.compare("GET", "/car/999", status=404)  # getCar sets 404 itself

    @pytest.mark.parametrize("path", ["/car/abc", "/car/1.5", "/car/1/extra", "/car"])
    def test_paths_that_do_not_match_the_typed_template(self, pair, path):
        pair.compare("GET", path, status=404)

    def test_add_car_json_and_form(self, pair):
        car = {
            "make": "Honda",
            "model": "Fit",
            "edition": "Sport",
            "year": 2015,
            "miles": 12000,
            "price": 9999.5,
        }
        pair.compare("POST", "/car/", status=200, **json_form(car))
        pair.compare("POST", "/car/", status=200, data={k: str(v) for k, v in car.items()})
        pair.compare("GET", "/car/", status=200)

    def test_add_car_invalid(self, pair):
        pair.compare("POST", "/car/", status=400, **json_form({"model": "Fit", "year": 2015}))
        pair.compare(
            "POST", "/car/", status=400, **json_form({"make": "Honda", "model": "Fit", "year": 0})
        )

    def test_update_and_delete(self, pair):
        car = {
            "make": "Ford",
            "model": "Ka",
            "edition": "Base",
            "year": "2001",
            "miles": "1",
            "price": "100",
        }
        pair.compare("PUT", f"/car/{FIRST_CAR}", status=200, data=car)
        # an empty form value reaches R as a missing argument: an error in R
        pair.compare("PUT", f"/car/{FIRST_CAR}", status=500, data={**car, "edition": ""})
        pair.compare("PUT", "/car/12345", status=500, data=car)  # stop("No such ID")
        pair.compare("DELETE", f"/car/{FIRST_CAR + 1}", status=200)
        pair.compare("DELETE", f"/car/{FIRST_CAR + 1}", status=400)  # already gone
        pair.compare("GET", "/car/", status=200)

    def test_wrong_method(self, pair):
        assert_405(pair.send("PATCH", "/car/1"), "GET, PUT, DELETE")


class TestEntrypoint:
    """12-entrypoint: plumber runs the folder (its entrypoint.R adds a session cookie to
    myplumberapi.R). plumbline never executes an entrypoint.R, so it serves the folder's
    using_plumber_tag.R, the same router built with a `#* @plumber` block, which plumber's own
    loader applies in each worker."""

    EXAMPLE = "12-entrypoint"
    FILE = "myplumberapi.R"
    PLUMBER_FROM_DIR = True
    PLUMBLINE_FILE = "using_plumber_tag.R"

    def test_session_counter(self, pair):
        for which in ("plumber", "plumbline"):
            first = pair.request(which, "GET", "/counter")
            assert first.text == '["This is visit #0"]', which
            again = pair.request(
                which,
                "GET",
                "/counter",
                headers={"Cookie": f"cookieName={first.cookies['cookieName']}"},
            )
            assert again.text == '["This is visit #1"]', which
        pair.compare(
            "GET",
            "/counter",
            status=200,
            present=("set-cookie",),
            masks={"set-cookie": session_cookie_shape},
        )


class TestPromises:
    EXAMPLE = "13-promises"

    def test_sync(self, pair):
        pair.compare("GET", "/sync", status=200, body=mask_time)
        pair.compare("GET", "/sync-bad", status=500)

    def test_async_and_async_error(self, pair):
        # Both take ~5 s; each server gets both requests at once.
        with ThreadPoolExecutor(2) as pool:
            ok, bad = pool.map(lambda p: pair.send("GET", p), ["/async", "/async-bad"])
        assert_same(ok, body=mask_time)
        assert_same(bad)


class TestOpenapiSpec:
    """15-openapi-spec has no plumber.R: its entrypoint.R builds the router in code
    (Plumber$new(), pr$handle(), pr$setApiSpec()). plumbline never runs an entrypoint.R, so
    it serves tests/compat/apps/15-openapi-spec/plumber.R, the same code in a `#* @plumber`
    block. plumber serves its docs here: the customised /openapi.json must be plumber's."""

    EXAMPLE = "15-openapi-spec"
    FILE = "entrypoint.R"
    PLUMBER_FROM_DIR = True
    PLUMBER_DOCS = True
    PLUMBLINE_FILE = APPS / "15-openapi-spec" / "plumber.R"

    @pytest.mark.parametrize(
        "query, status", [("num=1&num=2&num=3", 200), ("num=4", 200), ("num=a", 200), ("", 500)]
    )
    def test_sum(self, pair, query, status):
        pair.compare("GET", "/sum?" + query, status=status)

    def test_customised_openapi_document_is_plumbers(self, pair):
        ex = pair.compare("GET", "/openapi.json", status=200)
        spec = ex.plumbline.json()
        assert spec["paths"]["/sum"]["get"]["summary"] == "Sum numbers"
        assert spec["paths"]["/sum"]["get"]["parameters"][0]["schema"]["minItems"] == 1


class TestAttachment:
    EXAMPLE = "16-attachment"

    @pytest.mark.parametrize("path", ["/name", "/no_name", "/inline"])
    def test_attachment_headers(self, pair, path):
        pair.compare("GET", path, status=200, body=mask_time)


class TestArguments:
    EXAMPLE = "17-arguments"
    ADDRESS = re.compile(rb"0x[0-9a-f]+")

    def _print(self, body: bytes) -> bytes:
        return self.ADDRESS.sub(b"0x", body)

    def test_bad_practice(self, pair):
        pair.compare("POST", "/bad-practice/1/2?a=3", status=200, content=b"")
        pair.compare("POST", "/bad-practice/1/2", status=200, data={"a": "3"})
        pair.compare("POST", "/bad-practice/1/2?d=3", status=200, content=b"")
        pair.compare("POST", "/bad-practice/1/2", status=200, data={"d": "3"})

    def test_good_practice_form(self, pair):
        pair.compare(
            "POST",
            "/good-practice/3/4?a=1&b=2&d=10",
            status=200,
            data={"a": "5", "b": "6"},
            body=self._print,
        )

    def test_good_practice_json(self, pair):
        pair.compare(
            "POST",
            "/good-practice/x/y?q=1",
            status=200,
            **json_form({"a": [1, 2], "n": None, "t": True, "s": "é"}),
            body=self._print,
        )

    def test_good_practice_text_and_octet(self, pair):
        pair.compare(
            "POST",
            "/good-practice/x/y",
            status=200,
            content=b"plain words",
            headers={"content-type": "text/plain"},
            body=self._print,
        )
        pair.compare(
            "POST",
            "/good-practice/x/y",
            status=200,
            content=bytes(range(8)),
            headers={"content-type": "application/octet-stream"},
            body=self._print,
        )

    def test_good_practice_multipart(self, pair):
        pair.compare(
            "POST",
            "/good-practice/x/y",
            status=200,
            data={"field": "value"},
            files={"upload": ("notes.txt", b"line 1\nline 2\n", "text/plain")},
            body=self._print,
        )

    def test_good_practice_encoded_path(self, pair):
        pair.compare(
            "POST", "/good-practice/a%20b/%C3%A9", status=200, content=b"", body=self._print
        )

    def test_wrong_method(self, pair):
        assert_405(pair.send("GET", "/good-practice/1/2"), "POST")


class TestFuture:
    """14-future attaches coro (not packaged by Debian bookworm, so usually skipped)."""

    EXAMPLE = "14-future"
    NEEDS = ("coro",)

    def test_divide(self, pair):
        pair.compare("GET", "/divide?a=6&b=3", status=200)
        pair.compare("GET", "/divide?a=6", status=500)  # "b is missing"
        pair.compare("GET", "/divide-catch?a=6", status=200)  # caught: Inf
        pair.compare("GET", "/divide-catch?b=3", status=500)  # "a is missing", rethrown
