"""The only module that talks to the Kubernetes API (the kopf rule: only the clients do).

`connect()` builds the official client from a kubeconfig (``--kubeconfig``, ``$KUBECONFIG``,
``~/.kube/config``; ``--context``) or, inside a pod, from the service account. `Cluster`
offers the few verbs plumbline needs on plain dicts, addressed by apiVersion and kind
through a fixed table of the kinds plumbline touches, so no discovery round-trip is made.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

FIELD_MANAGER = "plumbline"
_SA_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
_REQUEST_TIMEOUT = (10, 60)  # (connect, read) seconds

# (apiVersion, kind) -> plural resource name; all of them are namespaced.
RESOURCES: dict[tuple[str, str], str] = {
    ("v1", "ConfigMap"): "configmaps",
    ("v1", "Secret"): "secrets",
    ("v1", "Service"): "services",
    ("v1", "ServiceAccount"): "serviceaccounts",
    ("v1", "Pod"): "pods",
    ("v1", "Event"): "events",
    ("apps/v1", "Deployment"): "deployments",
    ("apps/v1", "ReplicaSet"): "replicasets",
    ("networking.k8s.io/v1", "Ingress"): "ingresses",
    ("networking.k8s.io/v1", "NetworkPolicy"): "networkpolicies",
    ("policy/v1", "PodDisruptionBudget"): "poddisruptionbudgets",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "horizontalpodautoscalers",
    ("rbac.authorization.k8s.io/v1", "Role"): "roles",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "rolebindings",
}


class KubeError(RuntimeError):
    """An answer of the API server other than success, with its Status reason and message."""

    def __init__(self, status: int, reason: str, message: str):
        super().__init__(f"{status} {reason}: {message}")
        self.status, self.reason, self.message = status, reason, message


class NotFound(KubeError):
    pass


class Conflict(KubeError):
    """409: the object exists, or a server-side apply would take fields from another manager."""


class Unreachable(KubeError):
    """No answer from the API server at all."""

    def __init__(self, server: str, cause: Exception):
        super().__init__(0, "Unreachable", f"{server}: {cause}")


class ConnectError(RuntimeError):
    """No usable kubeconfig or in-cluster configuration."""


def resource_path(
    api_version: str,
    kind: str,
    namespace: str,
    name: str | None = None,
    subresource: str | None = None,
) -> str:
    try:
        plural = RESOURCES[(api_version, kind)]
    except KeyError:
        raise KubeError(
            400, "UnsupportedKind", f"plumbline does not manage {api_version} {kind}"
        ) from None
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    path = f"{base}/namespaces/{quote(namespace, safe='')}/{plural}"
    if name:
        path += "/" + quote(name, safe="")
    if subresource:
        path += "/" + subresource
    return path


def selector_string(labels: dict[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def matches(obj: dict, labels: dict[str, str]) -> bool:
    """Whether an object carries all these labels (checked here too: never trust a filter blindly)."""
    have = (obj.get("metadata") or {}).get("labels") or {}
    return all(have.get(key) == value for key, value in labels.items())


@dataclass
class Cluster:
    """A connection to one cluster and the namespace the operations work in."""

    api: k8s_client.ApiClient
    namespace: str
    context: str | None = None

    @property
    def server(self) -> str:
        return self.api.configuration.host

    def request(
        self,
        method: str,
        path: str,
        *,
        body=None,
        content_type: str | None = None,
        query: list[tuple[str, str]] | None = None,
        raw: bool = False,
        headers: dict[str, str] | None = None,
    ):
        """One API call; returns the decoded JSON (or text when raw), raises KubeError.

        `headers` are added (a pod proxy passes them on to the pod)."""
        headers = {**(headers or {}), "Accept": "text/plain, */*" if raw else "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        serialized = self.api.param_serialize(
            method,
            path,
            query_params=list(query or []),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self.api.call_api(*serialized, _request_timeout=_REQUEST_TIMEOUT)
            data = response.read()
        except ApiException as exc:  # raised by the REST layer for some transport errors
            raise KubeError(exc.status or 0, exc.reason or "Error", str(exc.body or exc)) from exc
        except (OSError, urllib3.exceptions.HTTPError) as exc:
            raise Unreachable(self.server, exc) from exc
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data or "")
        if not 200 <= response.status <= 299:
            raise _error(response.status, response.reason, text)
        if raw:
            return text
        return json.loads(text) if text else {}

    # -- reads --------------------------------------------------------------------------
    def get(self, api_version: str, kind: str, name: str) -> dict | None:
        try:
            return self.request("GET", resource_path(api_version, kind, self.namespace, name))
        except NotFound:
            return None

    def list(self, api_version: str, kind: str, labels: dict[str, str] | None = None) -> list[dict]:
        """Objects of a kind in the namespace carrying all `labels`; [] if the API is not served."""
        query = [("labelSelector", selector_string(labels))] if labels else []
        try:
            found = self.request(
                "GET", resource_path(api_version, kind, self.namespace), query=query
            )
        except NotFound:
            return []
        items = [item for item in found.get("items") or [] if matches(item, labels or {})]
        # List items carry no apiVersion/kind; restore them for the callers.
        for item in items:
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
        return items

    def events_for(self, kind: str, name: str) -> list[dict]:
        """Events about one object, oldest first."""
        query = [("fieldSelector", f"involvedObject.kind={kind},involvedObject.name={name}")]
        try:
            found = self.request("GET", resource_path("v1", "Event", self.namespace), query=query)
        except NotFound:
            return []
        events = [
            event
            for event in found.get("items") or []
            if (event.get("involvedObject") or {}).get("name") == name
            and (event.get("involvedObject") or {}).get("kind") == kind
        ]
        return sorted(events, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")

    def pod_log_lines(
        self,
        pod: str,
        container: str | None = None,
        *,
        tail_lines: int | None = None,
        follow: bool = False,
    ) -> Iterator[str]:
        """A pod's log line by line; with `follow`, until the container stops."""
        query = [("container", container)] if container else []
        if tail_lines is not None:
            query.append(("tailLines", str(tail_lines)))
        if follow:
            query.append(("follow", "true"))
        serialized = self.api.param_serialize(
            "GET",
            resource_path("v1", "Pod", self.namespace, pod, "log"),
            query_params=query,
            header_params={"Accept": "text/plain, */*"},
            auth_settings=["BearerToken"],
        )
        try:
            # A followed log may stay quiet for long: no read timeout then.
            response = self.api.call_api(
                *serialized,
                _request_timeout=(_REQUEST_TIMEOUT[0], None) if follow else _REQUEST_TIMEOUT,
            )
            if not 200 <= response.status <= 299:
                raise _error(
                    response.status, response.reason, response.read().decode("utf-8", "replace")
                )
            pending = b""
            for chunk in response.response.stream(4096):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    yield line.decode("utf-8", "replace")
            if pending:
                yield pending.decode("utf-8", "replace")
        except (OSError, urllib3.exceptions.HTTPError) as exc:
            raise Unreachable(self.server, exc) from exc

    # -- writes -------------------------------------------------------------------------
    def apply(
        self, manifest: dict, *, force: bool = False, field_manager: str = FIELD_MANAGER
    ) -> dict:
        """Server-side apply of one manifest (PATCH application/apply-patch+yaml): the API
        server creates the object if it is missing. A 404 is an error to report as it is (a
        namespace or an API the cluster does not have), never a cue to try something else."""
        meta = manifest["metadata"]
        namespace = meta.get("namespace") or self.namespace
        path = resource_path(manifest["apiVersion"], manifest["kind"], namespace, meta["name"])
        query = [("fieldManager", field_manager)] + ([("force", "true")] if force else [])
        # JSON is YAML, so the manifest goes as JSON under the apply content type.
        return self.request(
            "PATCH", path, body=manifest, content_type="application/apply-patch+yaml", query=query
        )

    def merge_patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        patch: dict,
        *,
        subresource: str | None = None,
        field_manager: str = FIELD_MANAGER,
    ) -> dict:
        """An RFC 7386 merge patch (kubectl's restart, scale and undo are patches too)."""
        path = resource_path(api_version, kind, self.namespace, name, subresource)
        return self.request(
            "PATCH",
            path,
            body=patch,
            content_type="application/merge-patch+json",
            query=[("fieldManager", field_manager)],
        )

    def delete(self, api_version: str, kind: str, name: str) -> bool:
        """Delete one object, its dependents in the background; False if it was already gone."""
        path = resource_path(api_version, kind, self.namespace, name)
        try:
            self.request(
                "DELETE",
                path,
                body={
                    "kind": "DeleteOptions",
                    "apiVersion": "v1",
                    "propagationPolicy": "Background",
                },
            )
        except NotFound:
            return False
        return True


def _error(status: int, reason: str | None, text: str) -> KubeError:
    try:
        payload = json.loads(text)
    except ValueError:
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    reason = payload.get("reason") or reason or "Error"
    message = payload.get("message") or text.strip()[:500] or reason
    cls = NotFound if status == 404 else Conflict if status == 409 else KubeError
    return cls(status, reason, message)


def connect(
    *, kubeconfig: str | None = None, context: str | None = None, namespace: str | None = None
) -> Cluster:
    """A Cluster from a kubeconfig (explicit, $KUBECONFIG or ~/.kube/config) or in-cluster config.

    The namespace is `namespace`, else the context's namespace, else the pod's own, else
    "default". No request is made here.
    """
    configuration = k8s_client.Configuration()
    context_namespace = None
    explicit = kubeconfig or context
    # Read $KUBECONFIG now: the client library reads it once, when it is imported.
    where = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
    try:
        k8s_config.load_kube_config(
            config_file=where,
            context=context,
            client_configuration=configuration,
            persist_config=False,
        )
        context_namespace = _context_namespace(where, context)
    except (ConfigException, FileNotFoundError, OSError) as exc:
        if explicit or not _in_cluster():
            raise ConnectError(
                f"no usable Kubernetes configuration ({where}"
                f"{', context ' + context if context else ''}): {exc}"
            ) from exc
        k8s_config.load_incluster_config(client_configuration=configuration)
        context_namespace = _SA_NAMESPACE_FILE.read_text().strip() or None
    return Cluster(
        api=k8s_client.ApiClient(configuration),
        namespace=namespace or context_namespace or "default",
        context=context,
    )


def _context_namespace(kubeconfig: str, context: str | None) -> str | None:
    contexts, active = k8s_config.list_kube_config_contexts(config_file=kubeconfig)
    chosen = next((c for c in contexts if c.get("name") == context), None) if context else active
    return ((chosen or {}).get("context") or {}).get("namespace")


def _in_cluster() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and _SA_NAMESPACE_FILE.exists()
