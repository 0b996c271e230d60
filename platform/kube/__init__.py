"""The Kubernetes backend: manifests, Helm values and RBAC rendered from an AppSpec; the API
client (client.py, the only module that talks to the Kubernetes API), server-side apply,
rollout watching and the operations behind `KubernetesBackend`."""
