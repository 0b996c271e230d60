"""Swagger UI at /__docs__/, from the swagger-ui-bundle package's files (no CDN).

The page and its initializer are ours (pointing at ../openapi.json, validator off so the
browser never calls out; for a key-only app, a form that asks for the key); the JS/CSS come
from the package, read once and kept in memory. Nothing in them is the app's, so a key-only
app serves them without a key (access.py); its /openapi.json stays behind the key.
"""

from __future__ import annotations

from swagger_ui_bundle import swagger_ui_path

from plumbline.runtime.front.errors import PLUMBER_NOT_FOUND, send_error
from plumbline.runtime.front.responses import send_bytes

PREFIX = "/__docs__"

_INDEX = b"""<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>API documentation</title>
    <link rel="stylesheet" type="text/css" href="./swagger-ui.css" />
    <link rel="stylesheet" type="text/css" href="./index.css" />
    <link rel="icon" type="image/png" href="./favicon-32x32.png" sizes="32x32" />
    <style>
      #plumbline-key { max-width: 460px; margin: 48px auto; font-family: sans-serif; }
      #plumbline-key input { width: 100%; box-sizing: border-box; margin: 8px 0; padding: 6px; }
      #plumbline-key-message { color: #b00020; }
    </style>
  </head>
  <body>
    <form id="plumbline-key" hidden>
      <label for="plumbline-key-value">This API needs a key (<code>Authorization: Key</code>):</label>
      <input id="plumbline-key-value" type="password" autocomplete="off" required />
      <button type="submit">Use this key</button>
      <p id="plumbline-key-message" role="alert"></p>
    </form>
    <div id="swagger-ui"></div>
    <script src="./swagger-ui-bundle.js" charset="UTF-8"></script>
    <script src="./swagger-ui-standalone-preset.js" charset="UTF-8"></script>
    <script src="./swagger-initializer.js" charset="UTF-8"></script>
  </body>
</html>
"""

# A key-only app answers /openapi.json, and every call, only with `Authorization: Key <key>`:
# the page then asks for a key and sends it with each request it makes. The key stays in
# this page's memory (no storage, no cookie), so no other page of the origin can read it.
_INITIALIZER = b"""window.onload = function() {
  var spec = "../openapi.json";
  var key = null;
  var form = document.getElementById("plumbline-key");
  var input = document.getElementById("plumbline-key-value");
  var message = document.getElementById("plumbline-key-message");
  function start() {
    form.hidden = true;
    window.ui = SwaggerUIBundle({
      url: spec,
      dom_id: "#swagger-ui",
      deepLinking: true,
      validatorUrl: null,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      plugins: [SwaggerUIBundle.plugins.DownloadUrl],
      layout: "StandaloneLayout",
      requestInterceptor: function(request) {
        if (key !== null) request.headers["Authorization"] = "Key " + key;
        return request;
      }
    });
  }
  function ask(answer) {
    form.hidden = false;
    input.focus();
    if (!answer) { message.textContent = ""; return; }
    answer.json().then(function(body) { message.textContent = body.error; },
                       function() { message.textContent = "The API answered " + answer.status; });
  }
  form.addEventListener("submit", function(event) {
    event.preventDefault();
    var candidate = input.value.trim();
    input.value = "";
    fetch(spec, { headers: { "Authorization": "Key " + candidate } }).then(function(answer) {
      if (answer.ok) { key = candidate; start(); } else { ask(answer); }
    }, function() { message.textContent = "The API could not be reached."; });
  });
  fetch(spec).then(function(answer) {
    if (answer.status === 401) { ask(null); } else { start(); }
  }, start);
};
"""

_VENDOR_FILES = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "index.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "application/javascript; charset=utf-8",
    "swagger-ui-standalone-preset.js": "application/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}


class SwaggerDocs:
    def __init__(self):
        self._files: dict[str, tuple[bytes, bytes]] = {
            "": (_INDEX, b"text/html; charset=utf-8"),
            "index.html": (_INDEX, b"text/html; charset=utf-8"),
            "swagger-initializer.js": (_INITIALIZER, b"application/javascript; charset=utf-8"),
        }

    @staticmethod
    def handles(path: str) -> bool:
        return path == PREFIX or path.startswith(PREFIX + "/")

    async def __call__(self, scope, receive, send) -> None:
        path = scope["path"]
        if path == PREFIX:  # relative URLs in the page need the trailing slash
            # Relative too: <any prefix>/__docs__ -> <that prefix>/__docs__/, whichever
            # prefix the client came by (a stripping proxy hides it from us).
            await send_bytes(send, 307, b"", [(b"location", b"__docs__/")])
            return
        found = self._file(path[len(PREFIX) + 1 :])
        if found is None:
            await send_error(send, 404, PLUMBER_NOT_FOUND)
            return
        body, content_type = found
        cache = (b"cache-control", b"public, max-age=3600")
        await send_bytes(send, 200, body, [(b"content-type", content_type), cache])

    def _file(self, name: str) -> tuple[bytes, bytes] | None:
        if name not in self._files:
            if name not in _VENDOR_FILES:
                return None
            body = (swagger_ui_path / name).read_bytes()
            self._files[name] = (body, _VENDOR_FILES[name].encode())
        return self._files[name]
