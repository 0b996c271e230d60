"""AppSpec -> values for charts/plumbline-app, so Helm deploys what `plumbline render` prints.

`plumbline render PLUMBER_R --helm-values` prints them; a test renders the chart with them
and checks the objects equal `render(spec)` field for field.
"""

from __future__ import annotations

from plumbline.platform.kube.manifests import (
    SERVICE_PORT,
    app_version,
    container_env,
    container_resources,
    image_pull_policy,
    ingress_paths,
    make_bundle,
    pod_affinity,
    user_volumes,
)
from plumbline.platform.spec.appspec import RUNTIME_USER, AppSpec, SpecError


def helm_values(spec: AppSpec) -> dict:
    if spec.bundle_source is not None:
        raise SpecError(
            "an app whose pods fetch their bundle from plumbline server is the "
            "server's to deploy; the chart takes the files themselves"
        )
    if spec.deployment_overrides:
        raise SpecError(
            "the profile's job-json-overrides cannot be expressed as chart values; "
            "use `plumbline render` or `plumbline deploy`"
        )
    files: dict[str, str] = {}
    if not spec.files_in_image:
        bundle = make_bundle(spec)
        if bundle.binary_data:
            raise SpecError(
                f"binary files ({', '.join(sorted(bundle.binary_data))}) cannot go "
                "through Helm values; use app.existingConfigMap or the custom-image "
                "route (files_in_image)"
            )
        files = {item["path"]: bundle.data[item["key"]] for item in bundle.items}
    volumes, mounts = user_volumes(spec)
    r, p, a = spec.rollout, spec.probes, spec.autoscaling
    return {
        "name": spec.name,
        "version": app_version(spec),
        "image": spec.image,
        "imageDigest": spec.image_digest or "",
        "imagePullPolicy": image_pull_policy(spec),
        "imagePullSecrets": [{"name": s} for s in spec.image_pull_secrets],
        "replicas": spec.replicas,
        "workers": spec.workers,
        "app": {"files": files, "existingConfigMap": "", "filesInImage": spec.files_in_image},
        "runtime": {
            "requestTimeout": spec.request_timeout,
            "maxQueue": spec.max_queue,
            "config": spec.serve_config.name if spec.serve_config else "",
        },
        "packages": {
            "enabled": spec.package_file is not None,
            "repos": list(spec.packages.repos),
            "cacheClaim": spec.packages.cache_claim or "",
            "cacheSize": spec.packages.cache_size,
        },
        "resources": container_resources(spec),
        "env": container_env(spec),
        "labels": dict(spec.labels),
        "annotations": dict(spec.annotations),
        "nodeSelector": dict(spec.node_selector),
        "affinity": pod_affinity(spec),
        "extraVolumes": volumes,
        "extraVolumeMounts": mounts,
        "tmpSize": spec.tmp_size,
        "runAsUser": RUNTIME_USER,
        "probes": {
            "periodSeconds": p.period_seconds,
            "timeoutSeconds": p.timeout_seconds,
            "failureThreshold": p.failure_threshold,
            "startupFailureThreshold": p.startup_failure_threshold,
        },
        "rollout": {
            "maxSurge": r.max_surge,
            "maxUnavailable": r.max_unavailable,
            "progressDeadlineSeconds": r.progress_deadline_seconds,
            "revisionHistoryLimit": r.revision_history_limit,
            "drainDelaySeconds": r.drain_delay_seconds,
            "gracefulTimeoutSeconds": r.graceful_timeout_seconds,
        },
        "service": {"port": SERVICE_PORT},
        "ingress": {
            "enabled": spec.ingress.enabled,
            "className": spec.ingress.class_name or "",
            "host": spec.ingress.host or "",
            "tlsSecret": spec.ingress.tls_secret or "",
            "annotations": dict(spec.ingress.annotations),
            "paths": ingress_paths(spec) if spec.ingress.enabled else [],
        },
        "pdb": {"enabled": spec.disruption_budget},
        "networkPolicy": {
            "enabled": spec.network_policy.enabled,
            "ingressNamespace": spec.network_policy.ingress_namespace,
            "serverNamespace": spec.network_policy.server_namespace or "",
            "namespaces": list(spec.network_policy.namespaces),
        },
        "autoscaling": {
            "enabled": a.enabled,
            "minReplicas": a.min_replicas,
            "maxReplicas": a.max_replicas,
            "cpuUtilization": a.cpu_utilization,
        },
    }
