"""The local backend: replicas of `plumbline serve` behind a real HAProxy on one machine,
supervised by `plumbline up`, controlled over a private Unix socket (`LocalBackend`)."""
