"""The one place the server picks a Backend implementation and opens it; everything else in
the server holds the interface (plumbline.platform.backend.Backend)."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from plumbline.platform.backend import Backend, BackendError
from plumbline.platform.server.config import ServerConfig

log = logging.getLogger("plumbline.server.apps")


@dataclass
class OpenedBackend:
    backend: Backend
    config: ServerConfig  # with apps_url filled in when the backend knows it
    close: Callable[[], None]


def open_backend(config: ServerConfig) -> OpenedBackend:
    if config.backend == "kubernetes":
        from plumbline.platform.kube.backend import KubernetesBackend

        # The kubeconfig from $KUBECONFIG or ~/.kube/config, else the pod's service account.
        return OpenedBackend(KubernetesBackend(namespace=config.namespace), config, lambda: None)
    return _open_local(config)


def _open_local(config: ServerConfig) -> OpenedBackend:
    """A local host open to new apps, in this process: every app behind its one HAProxy."""
    from plumbline.platform.local.backend import LocalBackend
    from plumbline.platform.local.cluster import Settings
    from plumbline.platform.local.ports import port_is_free
    from plumbline.platform.local.control import ControlError
    from plumbline.platform.local.haproxy import HAProxyMissing
    from plumbline.platform.local.host import LocalHost

    if not port_is_free(config.apps_host, config.apps_port):
        raise BackendError(
            f"the apps' ingress port {config.apps_host}:{config.apps_port} is taken; "
            "choose another with --apps-port"
        )
    name = f"plumbline-server-{config.port}"
    settings = Settings(host=config.apps_host, port=config.apps_port)
    try:
        host = LocalHost(None, settings, say=log.info, name=name, open_to_new_apps=True)
    except (HAProxyMissing, ControlError) as exc:
        raise BackendError(str(exc)) from None
    thread = threading.Thread(target=host.run, daemon=True, name="local-apps")
    thread.start()
    deadline = time.monotonic() + 30
    while not (host.ingress.running and host.record.path.exists()):
        if not thread.is_alive() or time.monotonic() > deadline:
            raise BackendError(f"the local ingress did not start: {host.fatal or 'timed out'}")
        time.sleep(0.05)

    def close() -> None:
        host.request_stop("the server is stopping")
        thread.join(180)

    opened = dataclasses.replace(config, apps_url=config.apps_url or host.url)
    return OpenedBackend(LocalBackend(host=name), opened, close)
