"""The platform's commands (render, rbac, deploy, restart, scale, status, rollback, logs,
delete, up, down, loadtest). They build AppSpecs and call a Backend; only backends.py
knows which backend that is."""
