"""`plumbline serve`: parse plumber.R, start the R workers, then listen; drain on SIGTERM.

Exit codes are plumbline.exits.ExitCode. Order matters. Annotations are checked first (exit
2, file:line on stderr), except what only R can judge (a serializer or parser the app
registers itself). The worker pool starts before the port is bound, so a plumber.R that fails
to load in R exits 3 with R's message and a load balancer never sees the port open. The
first loaded worker reports plumber's own route table: from then on the app routes,
documents and labels by it (the annotation parser's reading stays the fallback). Then
uvicorn serves on a socket we bound ourselves (a busy port is a clear message and exit 4).
uvicorn and the front door are imported in a thread while R loads, off the way to ready.

Stopping (SIGTERM or SIGINT): /readyz turns 503 at once while requests are still served for
drain-delay seconds, so load balancers and Kubernetes endpoints take the pod out first; then
the listener closes, in-flight requests get up to graceful-timeout to finish, the pool is
closed, exit 0. A second signal skips what is left of the drain delay, a third stops
waiting for open connections and for R work.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import os
import resource
import signal
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvloop

from plumbline import routes
from plumbline.annotations import AnnotationError, parse_file
from plumbline.endpoints import PlumberFile
from plumbline.exits import ExitCode
from plumbline.runtime import logs
from plumbline.runtime.pool.pool import AppLoadError, PoolConfig, WorkerPool
from plumbline.runtime.pool.head_start import HeadStart
from plumbline.runtime.settings import ServeConfig, app_file, app_folder, entrypoint_packages

if TYPE_CHECKING:
    import uvicorn

    from plumbline.runtime.front.connection import Limits

EXIT_OK, EXIT_USAGE, EXIT_APP_LOAD, EXIT_BIND = (
    ExitCode.OK,
    ExitCode.USAGE,
    ExitCode.APP_LOAD,
    ExitCode.BIND,
)
log = logging.getLogger("plumbline.server")


def run(plumber_file: str | Path, config: ServeConfig, head_start: HeadStart | None = None) -> int:
    logs.configure(config.log_level)
    plumber_file = app_file(plumber_file)
    unsure: AnnotationError | None = None
    try:
        spec = parse_file(plumber_file)
    except AnnotationError as exc:
        if not exc.r_decides:
            print(f"plumbline serve: {exc}", file=sys.stderr)
            return EXIT_USAGE
        unsure, spec = exc, PlumberFile(str(plumber_file), ())  # R will tell
    except (OSError, UnicodeDecodeError) as exc:
        print(f"plumbline serve: cannot read {plumber_file}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    failed = use_packages(app_folder(plumber_file), config)
    if failed is not None:
        return failed
    if head_start is not None:
        head_start.environment_settled()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_serve(spec, config, unsure, head_start))


def use_packages(folder: Path, config: ServeConfig) -> int | None:
    """The R packages of the folder's manifest.json or renv.lock, installed if need be, first
    on .libPaths() of every worker (R_LIBS, read by R as it starts); an exit code if not."""
    if config.packages == "off":
        return None
    from plumbline.packages.library import PackageError, prepare_library, with_library
    from plumbline.packages.requirements import RequirementsError

    try:
        library = prepare_library(
            folder,
            Path(config.package_cache),
            repos=config.repos,
            install=config.packages == "install",
            emit=lambda line: log.info(line, extra={"fields": {"event": "packages"}}),
        )
    except (PackageError, RequirementsError) as exc:
        print(f"plumbline serve: {exc}", file=sys.stderr)
        return ExitCode.PACKAGES
    if library is not None:
        os.environ.update(with_library(dict(os.environ), library))
        log.info(
            "R library first on .libPaths()",
            extra={"fields": {"event": "packages", "library": str(library)}},
        )
    return None


def pool_config(
    spec: PlumberFile, config: ServeConfig, head_start: HeadStart | None = None
) -> PoolConfig:
    plumber_file = Path(spec.path).resolve()
    attach = entrypoint_packages(plumber_file)
    attach += tuple(p for p in config.attach if p not in attach)
    return PoolConfig(
        plumber_file=plumber_file,
        workers=config.workers,
        max_queue=config.max_queue,
        timeout=config.timeout or None,
        max_requests=config.max_requests,
        max_requests_jitter=config.max_requests_jitter,
        attach=attach,
        inline_futures=config.inline_futures,
        preload=config.preload,
        refork_after_full_gc=config.refork_after_full_gc,
        pipeline=config.pipeline,
        health_path=(
            "/health" if spec.has_route("GET", "/health") and config.health_interval else None
        ),
        health_interval=config.health_interval,
        max_worker_memory=config.max_worker_memory,
        recycle_memory=config.recycle_memory,
        head_start=head_start,
    )


def _import_front() -> None:
    """The HTTP side: uvicorn, Starlette, the front door. About 0.14 s of imports, run in a
    thread while R loads in its own process; they are used only once the pool has started."""
    import uvicorn  # noqa: F401

    import plumbline.runtime.front.app
    import plumbline.runtime.front.connection
    import plumbline.runtime.front.front_server  # noqa: F401


class _Stop:
    """Signal handlers only record the signal; the serve coroutine acts on it."""

    def __init__(self):
        self.first = asyncio.Event()  # drain
        self.again = asyncio.Event()  # skip the rest of the drain delay
        self.third = asyncio.Event()  # stop waiting for open connections
        self.count = 0
        self.closed_at: float | None = None  # when the listener was asked to close

    def __call__(self, signum: int) -> None:
        self.count += 1
        log.info(
            ("stop requested, draining", "skipping the drain delay", "forcing exit")[
                min(self.count, 3) - 1
            ],
            extra={"fields": {"signal": signal.Signals(signum).name}},
        )
        (self.first, self.again, self.third)[min(self.count, 3) - 1].set()


def route_table(spec: PlumberFile, report: bytes | None) -> PlumberFile:
    """plumber's route table from a worker's report; the annotations' reading without one."""
    if not report:
        return spec
    try:
        return routes.from_report(report, spec.path)
    except (ValueError, KeyError, TypeError) as exc:  # a report this version cannot read
        log.warning(
            {
                "message": "could not read the worker's route report; routing by the annotations",
                "error": str(exc),
            }
        )
        return spec


async def _serve(
    spec: PlumberFile,
    config: ServeConfig,
    unsure: AnnotationError | None = None,
    head_start: HeadStart | None = None,
) -> int:
    loop = asyncio.get_running_loop()
    stop = _Stop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop, signum)

    pool = WorkerPool(pool_config(spec, config, head_start))
    started = asyncio.ensure_future(pool.start())
    front_imported = asyncio.ensure_future(asyncio.to_thread(_import_front))
    stopped = asyncio.ensure_future(stop.first.wait())
    await asyncio.wait({started, stopped}, return_when=asyncio.FIRST_COMPLETED)
    await front_imported
    if not started.done():  # stopped while R was still loading
        started.cancel()
        with contextlib.suppress(asyncio.CancelledError, AppLoadError):
            await started
        await pool.close(config.graceful_timeout)
        return EXIT_OK
    stopped.cancel()
    try:
        started.result()
    except AppLoadError as exc:
        print(f"plumbline serve: {spec.path} failed to load in R:\n{exc.message}", file=sys.stderr)
        return EXIT_APP_LOAD
    if unsure is not None and not pool.route_report:
        print(f"plumbline serve: {unsure}", file=sys.stderr)
        await pool.close(config.graceful_timeout)
        return EXIT_USAGE
    spec = route_table(spec, pool.route_report)
    if spec.has_route("GET", "/health") and config.health_interval:
        pool.start_health_checks("/health")  # also when the app adds it in R code
    log.info(
        {
            "message": "routes",
            "source": spec.source,
            "endpoints": len(spec.endpoints),
            "in_code": sum(ep.in_code for ep in spec.endpoints),
        }
    )

    try:
        sock = _bind(config.host, config.port)
    except OSError as exc:
        print(
            f"plumbline serve: cannot listen on {config.host}:{config.port}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        await pool.close(config.graceful_timeout)
        return EXIT_BIND

    import uvicorn

    from plumbline.runtime.front.app import AppOptions, create_app
    from plumbline.runtime.front.connection import protocol_class
    from plumbline.runtime.front.front_server import FrontServer

    app = create_app(
        spec,
        pool,
        AppOptions(
            max_body=config.max_body,
            docs=config.docs,
            access_log=config.access_log,
            root_path=config.root_path,
            root_path_aliases=config.root_path_aliases,
            access=config.access,
            access_keys=config.access_keys,
            access_keys_file=config.access_keys_file,
            metrics_keys=config.metrics_keys,
        ),
    )
    inner = app.plumbline
    http = protocol_class(connection_limits(config), inner.health, inner.metrics.front)
    uvicorn_config = uvicorn.Config(
        app,
        http=http,
        lifespan="off",
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_keep_alive=config.keep_alive_timeout,  # type: ignore[arg-type]  # call_later's
        timeout_graceful_shutdown=math.ceil(config.graceful_timeout),
    )
    server = FrontServer(uvicorn_config)
    host, port = sock.getsockname()[:2]
    log.info(
        "listening",
        extra={
            "fields": {
                "url": f"http://{_url_host(host)}:{port}",
                "workers": config.workers,
                "plumber_file": spec.path,
            }
        },
    )
    # Everything loaded so far lives as long as the server: keep it out of Python's full
    # collections, which otherwise walk it all (about 20-50 ms here, a stall for every
    # request in flight) every few thousand requests.
    gc.freeze()
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    drained = asyncio.ensure_future(_drain(stop, app.plumbline.health, server, config))
    try:
        await asyncio.wait({serving, drained}, return_when=asyncio.FIRST_COMPLETED)
        server.should_exit = True
        await serving
    finally:
        drained.cancel()
        sock.close()
        if app.access_log is not None:
            app.access_log.flush()
        # what is left of graceful-timeout since the listener closed, for queued R work;
        # none after a third signal (it stops all waiting, R's included)
        since = time.monotonic() - (stop.closed_at or time.monotonic())
        grace = 0.0 if stop.third.is_set() else max(config.graceful_timeout - since, 1.0)
        await pool.close(grace)
    log.info("stopped")
    return EXIT_OK


async def _drain(stop: _Stop, health: Any, server: uvicorn.Server, config: ServeConfig) -> None:
    await stop.first.wait()
    health.draining = True
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.again.wait(), config.drain_delay)
    log.info(
        "closing listener, finishing in-flight requests",
        extra={"fields": {"graceful_timeout": config.graceful_timeout}},
    )
    server.should_exit = True
    stop.closed_at = time.monotonic()
    await stop.third.wait()
    server.force_exit = True


def connection_limits(config: ServeConfig) -> Limits:
    from plumbline.runtime.front.connection import OVERFLOW_RESERVE, Limits

    _raise_open_files_limit(config.max_connections + OVERFLOW_RESERVE + _FILES_BESIDES_CLIENTS)
    return Limits(
        max_header_bytes=config.max_header_bytes,
        max_headers=config.max_headers,
        max_url_length=config.max_url_length,
        header_timeout=config.header_timeout,
        body_timeout=config.body_timeout,
        max_connections=config.max_connections,
    )


# Open files the server needs besides client connections: worker pipes, logs, R's own.
_FILES_BESIDES_CLIENTS = 256


def _raise_open_files_limit(needed: int) -> None:
    """Raise the soft open-files limit to what max-connections needs (up to the hard limit):
    a server out of file descriptors cannot even answer its probes."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    if soft != resource.RLIM_INFINITY and soft < needed:
        log.warning(
            {
                "message": "the open-files limit is below what max-connections needs; "
                "lower max-connections or raise the limit",
                "open_files_limit": soft,
                "needed": needed,
            }
        )


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=2048)
    sock.set_inheritable(False)
    return sock


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
