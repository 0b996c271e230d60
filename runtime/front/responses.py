"""A whole response sent over ASGI in one go: status, headers with its length, body."""

from __future__ import annotations


async def send_bytes(send, status: int, body: bytes, headers=()) -> None:
    """Send `body` with `headers` (name, value byte pairs) and its Content-Length."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
