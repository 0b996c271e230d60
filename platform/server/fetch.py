"""Pods fetch their bundle: short-lived, per-bundle tokens and the download route.

On Kubernetes a published app's pods get no ConfigMap: their init container (`plumbline
prepare`, plumbline.runtime.prepare) downloads the version's bundle from
`GET /__api__/v1/bundles/<id>/download` with `Authorization: Bearer <token>` and checks its
sha256. The token opens that one bundle and nothing else (not the API: it is no API key),
expires after --bundle-token-ttl, and only its sha256 is stored. It travels in a Secret
named in the pod template, so renewing it (every third of its life, for every active
version) changes the Secret and rolls nothing out.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
from datetime import timedelta

from sqlalchemy import delete, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Route

from plumbline.platform.server.api import rate_limited
from plumbline.platform.server.db import Bundle, BundleToken, utcnow

TOKEN_PREFIX = "plb_"
log = logging.getLogger("plumbline.server.fetch")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def mint_token(session, bundle_id: int, ttl: float) -> str:
    """A new token for one bundle, valid `ttl` seconds; returned once, stored as sha256."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(30)
    session.add(
        BundleToken(
            bundle_id=bundle_id, hash=_hash(token), expires_at=utcnow() + timedelta(seconds=ttl)
        )
    )
    session.flush()
    return token


def bundle_for(session, token: str, bundle_id: int) -> Bundle | None:
    """The bundle the token opens, if it is that bundle and the token has not expired."""
    row = session.scalar(select(BundleToken).where(BundleToken.hash == _hash(token)))
    if row is None or row.bundle_id != bundle_id:
        return None
    expires = (
        row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=utcnow().tzinfo)
    )
    if expires <= utcnow():
        return None
    return session.get(Bundle, bundle_id)


def forget_expired(session) -> int:
    result = session.execute(delete(BundleToken).where(BundleToken.expires_at < utcnow()))
    return result.rowcount or 0


def download_path(bundle_id: int) -> str:
    return f"/__api__/v1/bundles/{bundle_id}/download"


async def download(request: Request):
    server = request.app.state.server
    client, limited = await rate_limited(request)
    if limited is not None:
        return limited
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    try:
        bundle_id = int(request.path_params["bundle"])
    except ValueError:
        return JSONResponse({"error": "no such bundle"}, status_code=404)

    def find():
        with server.db.session() as s:
            bundle = bundle_for(s, token.strip(), bundle_id) if scheme.lower() == "bearer" else None
            return (bundle.sha256, bundle.size) if bundle is not None else None

    found = await run_in_threadpool(find)
    if found is None:
        await run_in_threadpool(
            server.limiter.failed, client, "invalid or expired bundle token", request.url.path
        )
        return JSONResponse(
            {
                "error": "a valid bundle token for this bundle is needed "
                "(`Authorization: Bearer <token>`)"
            },
            status_code=401,
        )
    sha256, size = found
    path = server.store.path_of(sha256)
    if not path.is_file():
        return JSONResponse({"error": "the bundle is no longer stored"}, status_code=410)
    return FileResponse(
        path,
        media_type="application/gzip",
        headers={"X-Bundle-Sha256": sha256, "Content-Length": str(size)},
    )


ROUTES = [Route("/__api__/v1/bundles/{bundle}/download", download)]


class TokenRenewer:
    """Every third of the token's life, a fresh token for each active version's pods."""

    def __init__(self, deployer, interval: float):
        self.deployer, self.interval = deployer, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="token-renewer")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        # At once too: after the server was down longer than a token lives, pods that start
        # (rescheduled, scaled up) need a valid one again.
        while True:
            try:
                self.deployer.renew_tokens()
            except Exception:  # logged, tried again next time: tokens still have 2/3 to live
                log.exception("renewing the bundle tokens failed")
            if self._stop.wait(self.interval):
                return
