"""A Kubernetes API on loopback for the cluster tests, and the controllers a cluster would run.

`EmulatedApiServer` runs KMock's KubernetesEmulator (an in-memory API server over HTTP) on
127.0.0.1 in a background thread. The emulator stores objects as plain JSON and merges
patches; it keeps no resourceVersion, generation or uid, and a server-side apply of a missing
object is a 404 there. `ApiServerEmulator` adds what a real API server does and clients rely
on: that bookkeeping (to tell "changed" from "unchanged", "observed" from "not yet
observed"), and server-side apply as the API server implements it: an apply creates a
missing object (201) and is checked first (fieldManager, apiVersion and kind, the name and
namespace of the URL; a namespace that does not exist is a 404 naming it).

`client_requests()` are the requests the tested client sent (they carry the kubeconfig's
token; the played controllers send none), and `verbs_used()` turns them into the RBAC verbs
an API server authorises them by, so tests check what the emulator actually received.

`PlayedControllers` is the test playing the Deployment and ReplicaSet controllers and the
kubelets for one Deployment, from a background thread and over HTTP only: it creates a
ReplicaSet (with its revision annotation) per pod template, pods that become ready, crash
loop or never start depending on the image tag (":crash", ":stuck", ":silent"; with
":initcrash" the init container fails, as when an R package cannot be installed), events,
and the Deployment's status and conditions.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import attrs
import httpx
import kmock
import yaml

from plumbline.platform.kube.client import RESOURCES

REVISION = "deployment.kubernetes.io/revision"


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


APPLY_PATCH = "application/apply-patch+yaml"
TOKEN = "test-token"  # the kubeconfig's user: what marks the tested client's requests
# The resource a kind is served as, to check an apply's body against its URL.
_KIND_OF = {plural: (api_version, kind) for (api_version, kind), plural in RESOURCES.items()}


class ApiServerEmulator(kmock.KubernetesEmulator):
    """KMock's emulator plus uid, creationTimestamp, resourceVersion and generation, and
    server-side apply that creates a missing object, as a real API server does.

    `namespaces`: when a set, a create (POST, or an apply of a missing object) in any other
    namespace is refused with the API server's 404 `namespaces "x" not found`.
    """

    _counter = itertools.count(1)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.namespaces: set[str] | None = None

    async def _handle(self, request):
        if _is_apply(request):
            body = self._checked_apply(request)
            async with self._lock:
                key = (request.resource, request.namespace, request.name)
                missing = key not in self._objects or self._objects[key].deleted
            if missing:
                # kube-apiserver's patch handler creates the object (authorised as "create"
                # too). Here the request goes on as a create of the applied body, and is
                # recorded as one: still a PATCH on the wire, with the action it had.
                self._check_namespace(request.namespace)
                request = attrs.evolve(request, action=kmock.action.CREATE, data=body)
                self._requests[request.id] = request  # KMock matches recorded requests
        elif request.action == kmock.action.CREATE and request.resource is not None:
            self._check_namespace(
                request.namespace or ((request.data or {}).get("metadata") or {}).get("namespace")
            )
        return await super()._handle(request)

    def _checked_apply(self, request) -> dict:
        """The applied object, refused as kube-apiserver refuses a malformed apply."""

        def bad(message, status=400, reason="BadRequest"):
            return kmock.KubernetesError(status=status, reason=reason, message=message)

        if not request.params.get("fieldManager"):
            raise bad(
                'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                "is required for apply patch",
                422,
                "Invalid",
            )
        try:
            body = yaml.safe_load(request.body)  # JSON is YAML
        except yaml.YAMLError as exc:
            raise bad(f"error decoding YAML: {exc}") from None
        if not isinstance(body, dict):
            raise bad("the body of an apply patch must be an object")
        if not body.get("apiVersion") or not body.get("kind"):
            raise bad("apiVersion and kind must be set")
        served = _KIND_OF.get(request.resource.plural)
        if served and (body["apiVersion"], body["kind"]) != served:
            raise bad(
                f"{body['apiVersion']} {body['kind']} cannot be applied to "
                f"{request.resource.plural}"
            )
        meta = body.get("metadata") or {}
        if meta.get("name") != request.name:
            raise bad(
                f"the name of the object ({meta.get('name')}) does not match the name "
                f"on the URL ({request.name})"
            )
        if meta.get("namespace") not in (None, request.namespace):
            raise bad(
                "the namespace of the provided object does not match the namespace "
                "sent on the request"
            )
        return body

    def _check_namespace(self, namespace):
        if self.namespaces is not None and namespace not in self.namespaces:
            raise kmock.KubernetesError(
                status=404, reason="NotFound", message=f'namespaces "{namespace}" not found'
            )

    async def _serve_create(self, request):
        self._bookkeep(
            request,
            request.namespace or request.data["metadata"].get("namespace"),
            request.data["metadata"]["name"],
        )
        created = await super()._serve_create(request)
        return kmock.Response(status=201, payload=created)

    async def _serve_update(self, request):
        self._bookkeep(request, request.namespace, request.name)
        return await super()._serve_update(request)

    def _bookkeep(self, request, namespace, name):
        obj = self.objects[request.resource, namespace, name]
        history = list(obj.history)
        last = obj.last.raw
        previous = history[-2] if len(history) >= 2 else None
        meta = dict(last.get("metadata") or {})
        if previous is None:  # created (or re-created after a deletion)
            meta.update(
                uid=str(uuid.uuid4()),
                creationTimestamp=_now(),
                generation=1,
                resourceVersion=str(next(self._counter)),
            )
        else:
            previous = previous.raw
            if previous != last:  # a no-op write keeps the resourceVersion, as on a real server
                meta["resourceVersion"] = str(next(self._counter))
            if previous.get("spec") != last.get("spec"):
                meta["generation"] = (previous.get("metadata") or {}).get("generation", 1) + 1
        obj["metadata"] = meta


def _is_apply(request) -> bool:
    content_type = _header(request, "Content-Type") or ""
    return (
        request.method == kmock.method.PATCH
        and request.name is not None
        and request.resource is not None
        and content_type.startswith(APPLY_PATCH)
    )


def _header(request, name: str) -> str | None:
    return next(
        (value for key, value in request.headers.items() if key.lower() == name.lower()), None
    )


def _pod_log(request) -> bytes:
    """The kubelet's log of a pod: the init container's says why it failed (as plumbline
    prepare would), the app's names the pod, so mix-ups show."""
    if (request.params or {}).get("container") == "prepare":
        return (
            b"R packages: installing 1 into library 0123\n"
            b"plumbline prepare: R packages could not be installed: ranger 0.16.0. "
            b"R said: package 'ranger' is not available\n"
        )
    return (
        f"Listening on http://0.0.0.0:8000\nGET /parity 200 (served by {request.name})\n"
    ).encode()


class EmulatedApiServer:
    """The emulator served on 127.0.0.1 from its own event loop thread."""

    def __init__(self):
        self.scrapes, self.scrape_headers = {}, []
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the Kubernetes emulator did not start")

    async def _serve(self):
        self._stop = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        async with ApiServerEmulator() as emulator, kmock.Server(emulator) as server:
            for (api_version, _kind), plural in RESOURCES.items():  # served, even while empty
                emulator.resources[f"{api_version}/{plural}"] = {}
            # The kubelet's log endpoint: each pod's log names the pod, so mix-ups show.
            emulator[kmock.resource("v1/pods"), kmock.subresource("log")] << (
                lambda request: _pod_log(request)
            )
            # The pod proxy to each pod's /metrics: counters that grow with every scrape.
            emulator[kmock.resource("v1/pods"), kmock.subresource("proxy/metrics")] << (
                self._pod_metrics
            )
            self.emulator = emulator
            self.url = str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()

    scrapes: dict[str, int]
    scrape_headers: list[dict[str, str]]

    def _pod_metrics(self, request) -> bytes:
        """A pod's /metrics as the runtime writes it: 10 more GET /hello per scrape, one in
        ten a 500, all answered within 50 ms."""
        pod, _, port = (request.name or "").partition(":")
        self.scrape_headers.append({k.lower(): v for k, v in request.headers.items()})
        self.scrapes[f"{pod}:{port}"] = n = self.scrapes.get(f"{pod}:{port}", 0) + 1
        ok, failed = 9 * n, n
        return (
            "# TYPE plumbline_requests_total counter\n"
            f'plumbline_requests_total{{method="GET",route="/hello",status="200"}} {ok}.0\n'
            f'plumbline_requests_total{{method="GET",route="/hello",status="500"}} {failed}.0\n'
            f'plumbline_requests_total{{method="GET",route="/readyz",status="200"}} {n}.0\n'
            "# TYPE plumbline_request_duration_seconds histogram\n"
            f'plumbline_request_duration_seconds_bucket{{le="0.05",route="/hello"}} {ok + failed}.0\n'
            f'plumbline_request_duration_seconds_bucket{{le="+Inf",route="/hello"}} {ok + failed}.0\n'
            f'plumbline_request_duration_seconds_count{{route="/hello"}} {ok + failed}.0\n'
            f'plumbline_request_duration_seconds_sum{{route="/hello"}} {0.02 * (ok + failed)}\n'
        ).encode()

    def stop(self):
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def requests(self) -> list:
        return list(self.emulator)

    def client_requests(self) -> list:
        """The requests of the tested client (authenticated by the kubeconfig's token)."""
        return [r for r in self.requests() if _header(r, "Authorization") == f"Bearer {TOKEN}"]

    @staticmethod
    def created_by_apply(request) -> bool:
        return request.method == kmock.method.PATCH and request.action == kmock.action.CREATE

    def verbs_used(self, requests=None) -> dict[tuple[str, str], set[str]]:
        """(API group, resource[/subresource]) -> the verbs kube-apiserver authorises these
        requests by (default: all of the tested client's): GET is get, or list for a
        collection (watch with ?watch); POST create; PUT update; PATCH patch, and create
        too when an apply created the object; DELETE delete, deletecollection for a
        collection."""
        used: dict[tuple[str, str], set[str]] = {}
        for r in self.client_requests() if requests is None else requests:
            if r.resource is None:
                continue  # discovery (/api, /apis, /version): any authenticated user may
            resource = r.resource.plural + (f"/{r.subresource}" if r.subresource else "")
            method = str(r.method.value).upper()
            watching = r.params.get("watch") in ("true", "1")
            verbs = {
                "GET": {"watch" if watching else "get" if r.name else "list"},
                "POST": {"create"},
                "PUT": {"update"},
                "PATCH": {"patch", "create"} if self.created_by_apply(r) else {"patch"},
                "DELETE": {"delete" if r.name else "deletecollection"},
            }[method]
            used.setdefault((r.resource.group, resource), set()).update(verbs)
        return used

    def kubeconfig(self, directory: Path, namespace: str = "default") -> Path:
        path = directory / "kubeconfig"
        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "emulator",
                    "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
                    "users": [{"name": "tester", "user": {"token": TOKEN}}],
                    "contexts": [
                        {
                            "name": "emulator",
                            "context": {
                                "cluster": "emulator",
                                "user": "tester",
                                "namespace": namespace,
                            },
                        }
                    ],
                }
            )
        )
        return path

    # Reads for assertions go over HTTP, like any client's.
    def get(self, path: str) -> dict | None:
        response = httpx.get(self.url + path, timeout=10)
        return None if response.status_code == 404 else response.json()

    def names(self, path: str) -> set[str]:
        found = self.get(path) or {}
        return {item["metadata"]["name"] for item in found.get("items") or []}


class PlayedControllers(threading.Thread):
    """The Deployment controller, ReplicaSet controller and kubelets, for one Deployment."""

    def __init__(self, url: str, namespace: str, name: str, tick: float = 0.05):
        super().__init__(daemon=True)
        self.http = httpx.Client(base_url=url, timeout=10)
        self.ns, self.name, self.tick = namespace, name, tick
        self._halt = threading.Event()
        self._revision_started: dict[str, float] = {}
        self.errors: list[Exception] = []

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self._halt.set()
        self.join(10)
        self.http.close()

    def run(self):
        while not self._halt.is_set():
            try:
                self.step()
            except (httpx.HTTPError, KeyError, ValueError) as exc:  # kept for the test to see
                self.errors.append(exc)
            time.sleep(self.tick)

    # -- HTTP helpers ---------------------------------------------------------------------
    def _apps(self, plural, name=""):
        return f"/apis/apps/v1/namespaces/{self.ns}/{plural}" + (f"/{name}" if name else "")

    def _core(self, plural, name=""):
        return f"/api/v1/namespaces/{self.ns}/{plural}" + (f"/{name}" if name else "")

    def _items(self, path):
        response = self.http.get(path)
        return response.json().get("items") or [] if response.status_code == 200 else []

    def _merge(self, path, patch):
        self.http.patch(
            path, json=patch, headers={"Content-Type": "application/merge-patch+json"}
        ).raise_for_status()

    # -- one reconciliation ---------------------------------------------------------------
    def step(self):
        response = self.http.get(self._apps("deployments", self.name))
        if response.status_code == 404:
            return
        dep = response.json()
        template = dep["spec"]["template"]
        replicas = dep["spec"].get("replicas", 1)
        pod_hash = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
        rs_name = f"{self.name}-{pod_hash}"
        replicasets = [
            rs
            for rs in self._items(self._apps("replicasets"))
            if any(
                ref.get("name") == self.name for ref in rs["metadata"].get("ownerReferences") or []
            )
        ]
        top = max((int(rs["metadata"]["annotations"][REVISION]) for rs in replicasets), default=0)
        current = next((rs for rs in replicasets if rs["metadata"]["name"] == rs_name), None)
        dep_revision = (dep["metadata"].get("annotations") or {}).get(REVISION)
        if current is None:
            revision = str(top + 1)
            self._create_replicaset(dep, rs_name, pod_hash, revision)
        else:
            revision = current["metadata"]["annotations"][REVISION]
            if revision != dep_revision and int(revision) != top:
                # Back to an older template (a rollback): it becomes the newest revision.
                revision = str(top + 1)
                self._merge(
                    self._apps("replicasets", rs_name),
                    {"metadata": {"annotations": {REVISION: revision}}},
                )
        if dep_revision != revision:
            self._merge(
                self._apps("deployments", self.name),
                {"metadata": {"annotations": {REVISION: revision}}},
            )
            self._revision_started[revision] = time.monotonic()
        started = self._revision_started.setdefault(revision, time.monotonic())

        selector = dep["spec"]["selector"]["matchLabels"]
        pods = [
            p
            for p in self._items(self._core("pods"))
            if all(p["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())
        ]
        new = [p for p in pods if p["metadata"]["labels"].get("pod-template-hash") == pod_hash]
        old = [p for p in pods if p not in new]
        image = template["spec"]["containers"][0]["image"]
        mode = (
            image.rsplit(":", 1)[-1]
            if image.rsplit(":", 1)[-1] in ("crash", "stuck", "silent", "initcrash")
            else "healthy"
        )
        conditions = [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}]

        if mode == "healthy":
            if len(new) < replicas:
                self._create_pod(rs_name, template, pod_hash, len(new), "ready")
            elif old:
                self.http.delete(self._core("pods", old[0]["metadata"]["name"]))
            elif len(new) > replicas:
                self.http.delete(self._core("pods", new[-1]["metadata"]["name"]))
            progressing = (
                "NewReplicaSetAvailable"
                if len(new) == replicas and not old
                else "ReplicaSetUpdated"
            )
            conditions.append({"type": "Progressing", "status": "True", "reason": progressing})
        elif not new:
            self._create_pod(rs_name, template, pod_hash, 0, mode)
        elif mode == "crash":
            pod = new[0]
            status = pod["status"]
            status["containerStatuses"][0]["restartCount"] += 1
            self._merge(
                self._core("pods", pod["metadata"]["name"]) + "/status",
                {"status": {"containerStatuses": status["containerStatuses"]}},
            )
        if mode == "stuck" and time.monotonic() - started > 0.5:
            conditions.append(
                {
                    "type": "Progressing",
                    "status": "False",
                    "reason": "ProgressDeadlineExceeded",
                    "message": f'ReplicaSet "{rs_name}" has timed out progressing.',
                }
            )
        elif mode != "healthy":
            conditions.append(
                {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}
            )

        ready_new = len(new) if mode == "healthy" else 0
        ready = ready_new + (len(old) if mode != "healthy" else 0)
        status = {
            "observedGeneration": dep["metadata"].get("generation", 1),
            "replicas": len(pods),
            "updatedReplicas": len(new),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "conditions": conditions,
        }
        if dep.get("status") != status:
            self._merge(self._apps("deployments", self.name) + "/status", {"status": status})

    def _create_replicaset(self, dep, rs_name, pod_hash, revision):
        template = json.loads(json.dumps(dep["spec"]["template"]))
        template["metadata"].setdefault("labels", {})["pod-template-hash"] = pod_hash
        self.http.post(
            self._apps("replicasets"),
            json={
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": rs_name,
                    "namespace": self.ns,
                    "labels": template["metadata"]["labels"],
                    "annotations": {REVISION: revision},
                    "ownerReferences": [
                        {
                            "apiVersion": "apps/v1",
                            "kind": "Deployment",
                            "name": self.name,
                            "uid": dep["metadata"]["uid"],
                            "controller": True,
                        }
                    ],
                },
                "spec": {
                    "replicas": dep["spec"].get("replicas", 1),
                    "selector": dep["spec"]["selector"],
                    "template": template,
                },
            },
        ).raise_for_status()

    def _create_pod(self, rs_name, template, pod_hash, index, mode):
        name = f"{rs_name}-{index}-{uuid.uuid4().hex[:5]}"
        container = template["spec"]["containers"][0]["name"]
        state = {
            "ready": {"running": {"startedAt": _now()}},
            "crash": {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off 10s restarting failed container={container}",
                }
            },
            "stuck": {"waiting": {"reason": "ContainerCreating"}},
            "silent": {"waiting": {"reason": "ContainerCreating"}},
            "initcrash": {"waiting": {"reason": "PodInitializing"}},
        }[mode]
        last_state = (
            {"terminated": {"reason": "Error", "exitCode": 1, "finishedAt": _now()}}
            if mode == "crash"
            else {}
        )
        ready = mode == "ready"
        init = (
            [
                {
                    "name": c["name"],
                    "ready": False,
                    "restartCount": 2,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"reason": "Error", "exitCode": 6}},
                }
                for c in template["spec"].get("initContainers") or []
            ]
            if mode == "initcrash"
            else []
        )
        self.http.post(
            self._core("pods"),
            json={
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": name,
                    "namespace": self.ns,
                    "labels": {
                        **template["metadata"].get("labels", {}),
                        "pod-template-hash": pod_hash,
                    },
                    "ownerReferences": [
                        {
                            "apiVersion": "apps/v1",
                            "kind": "ReplicaSet",
                            "name": rs_name,
                            "controller": True,
                        }
                    ],
                },
                "spec": template["spec"],
                "status": {
                    "phase": "Running" if mode in ("ready", "crash") else "Pending",
                    "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                    "initContainerStatuses": init,
                    "containerStatuses": [
                        {
                            "name": container,
                            "ready": ready,
                            "restartCount": 1 if mode == "crash" else 0,
                            "state": state,
                            "lastState": last_state,
                            "image": template["spec"]["containers"][0]["image"],
                        }
                    ],
                },
            },
        ).raise_for_status()
        if mode == "crash":
            self.http.post(
                self._core("events"),
                json={
                    "apiVersion": "v1",
                    "kind": "Event",
                    "metadata": {"name": f"{name}.backoff", "namespace": self.ns},
                    "involvedObject": {"kind": "Pod", "name": name, "namespace": self.ns},
                    "type": "Warning",
                    "reason": "BackOff",
                    "lastTimestamp": _now(),
                    "message": f"Back-off restarting failed container {container} in pod {name}",
                },
            ).raise_for_status()
