"""Values a client sends are data, never R code: payloads that would run R (or a shell) if they
were pasted into an expression go through query, path, JSON, form, multipart, cookie and
header values. Nothing may create the marker file, every answer is the value echoed back or
a JSON error, the server keeps answering, and plumbline answers as plumber does.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

from compat_harness import APPS, assert_same

pytestmark = pytest.mark.slow

MARKER = Path(tempfile.gettempdir()) / f"owned-{uuid.uuid4().hex}"
M = str(MARKER)
PAYLOADS = [
    f'system("touch {M}")',
    f'"); system("touch {M}"); ("',
    f"'); system('touch {M}'); ('",
    f'`system("touch {M}")`',
    f"eval(parse(text = \"file.create('{M}')\"))",
    f'file.create("{M}")',
    f'\\"); file.create(\\"{M}\\"); #',
    f"$(touch {M}); `touch {M}`",
    f'x"}}; file.create("{M}"); {{"',
    f'a\x00"); file.create("{M}")',
]
IDS = [f"payload{i}" for i in range(len(PAYLOADS))]
TEXT_PAYLOADS = [p for p in PAYLOADS if "\x00" not in p]  # headers cannot carry NUL


APP = APPS / "echo"  # served by the `pair` fixture (conftest.py), 2 workers


@pytest.fixture(autouse=True)
def _never_evaluated(pair):
    yield
    assert not MARKER.exists(), "a payload was evaluated as code"
    still = pair.request("plumbline", "GET", "/double?n=2")
    assert (still.status_code, still.json()) == (200, {"doubled": 4}), "server stopped answering"


def nul_fails(payload: str) -> int:
    """A NUL that reaches R's query or form parser is an error there (500), under plumber
    too; anything else is data (200)."""
    return 500 if "\x00" in payload else 200


def answered_as_data(ex, place: str, key: str, payload: str, status: int = 200) -> None:
    """Both answer `status`: 200 with the value echoed unchanged (an R string ends at a NUL,
    as under plumber), or a JSON error; and plumbline answers exactly as plumber."""
    reply = ex.plumbline
    assert ex.plumber.status_code == status, ex.describe()
    assert reply.headers["content-type"].startswith("application/json"), ex.describe()
    if reply.status_code == 200:
        assert reply.json()[place][key] == payload.split("\x00")[0], ex.describe()
    else:
        assert "error" in reply.json(), ex.describe()
    assert_same(ex)


@pytest.mark.parametrize("payload", PAYLOADS, ids=IDS)
def test_query_value(pair, payload):
    ex = pair.send("GET", "/echo/w?v=" + quote(payload, safe=""))
    answered_as_data(ex, "query", "v", payload, nul_fails(payload))


@pytest.mark.parametrize("payload", PAYLOADS, ids=IDS)
def test_query_name(pair, payload):
    ex = pair.send("GET", f"/echo/w?{quote(payload, safe='')}=1")
    answered_as_data(ex, "query", payload, "1", nul_fails(payload))


@pytest.mark.parametrize("payload", PAYLOADS, ids=IDS)
def test_path_value(pair, payload):
    # Like httpuv, plumber routes on the raw path: a path value arrives still percent-encoded.
    segment = quote(payload, safe="")
    ex = pair.send("GET", "/echo/" + segment)
    answered_as_data(ex, "path", "word", segment)


@pytest.mark.parametrize("payload", PAYLOADS, ids=IDS)
def test_typed_path_value(pair, payload):
    ex = pair.send("GET", "/item/" + quote(payload, safe=""))
    assert ex.plumbline.status_code == 404, ex.describe()
    assert_same(ex)


@pytest.mark.parametrize("payload", PAYLOADS, ids=IDS)
def test_json_value_and_name(pair, payload):
    body = json.dumps({"v": payload, payload: "k"}).encode()
    ex = pair.send("POST", "/echo/w", content=body, headers={"content-type": "application/json"})
    answered_as_data(ex, "body", "v", payload)


@pytest.mark.parametrize("payload", PAYLOADS, ids=IDS)
def test_form_value(pair, payload):
    ex = pair.send("POST", "/echo/w", data={"v": payload})
    answered_as_data(ex, "body", "v", payload, nul_fails(payload))


@pytest.mark.parametrize("payload", PAYLOADS, ids=IDS)
def test_multipart_value(pair, payload):
    ex = pair.send(
        "POST",
        "/echo/w",
        data={"v": payload},
        files={"f": ("x.txt", payload.encode(), "text/plain")},
    )
    assert ex.plumber.status_code == nul_fails(payload), ex.describe()
    assert_same(ex)


@pytest.mark.parametrize("payload", TEXT_PAYLOADS, ids=IDS[: len(TEXT_PAYLOADS)])
def test_header_and_cookie_values(pair, payload):
    headers = {
        "X-Payload": payload.encode("latin-1", "replace").decode("latin-1"),
        "Cookie": "v=" + quote(payload, safe=""),
    }
    ex = pair.send("GET", "/echo/w", headers=headers)
    answered_as_data(ex, "cookies", "v", payload)
    assert ex.plumbline.json()["header"] == payload


@pytest.mark.parametrize("payload", PAYLOADS, ids=IDS)
def test_value_converted_by_r_code(pair, payload):
    ex = pair.send("GET", "/double?n=" + quote(payload, safe=""))
    assert ex.plumber.status_code == nul_fails(payload), ex.describe()
    assert_same(ex)
    pair.compare("POST", "/double", status=nul_fails(payload), data={"n": payload})
