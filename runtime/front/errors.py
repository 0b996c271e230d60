"""JSON error responses with one stable shape: {"error": "<message>", ...detail fields}.

Never a traceback: unexpected exceptions are logged server-side and the client gets a
plain 500 body.
"""

from __future__ import annotations

import json
from typing import Any

from plumbline.runtime.front.responses import send_bytes

JSON_HEADER = (b"content-type", b"application/json")

# Bodies plumber itself returns, so clients see the same thing whichever server answers.
PLUMBER_NOT_FOUND = "404 - Resource Not Found"
PLUMBER_METHOD_NOT_ALLOWED = "405 - Method Not Allowed"


def error_body(message: str, **detail: Any) -> bytes:
    return json.dumps({"error": message, **detail}, separators=(",", ":")).encode()


async def send_error(
    send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None, **detail: Any
) -> None:
    """Send a complete JSON error response over ASGI."""
    await send_bytes(send, status, error_body(message, **detail), [JSON_HEADER, *(headers or ())])
