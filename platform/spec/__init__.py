"""The app spec: what an app is (AppSpec, profiles, quantities, ingress rules, its serve
command line). Pure data and checks: no Kubernetes client, no processes."""
