"""The JSON shapes of users, keys, apps and bundles, as the API returns them.

Field names follow Posit Connect's where rsconnect reads them (id, guid, name, url,
owner_username, user_role, created_time...), so one shape serves rsconnect and the dashboard.
"""

from __future__ import annotations

import json

from plumbline.platform.server.db import ApiKey, App, Bundle, User
from plumbline.platform.server.tasks import iso


def user_view(user: User) -> dict:
    return {
        "id": user.id,
        "guid": user.guid,
        "username": user.username,
        "email": user.email or "",
        "first_name": "",
        "last_name": "",
        "user_role": user.role,
        "locked": user.locked,
        "created_time": iso(user.created_at),
    }


def key_view(key: ApiKey) -> dict:
    return {
        "id": key.id,
        "user_id": key.user_id,
        "name": key.name,
        "hint": key.hint,
        "created_time": iso(key.created_at),
        "last_used_time": iso(key.last_used_at),
        "revoked_time": iso(key.revoked_at),
        "active": key.revoked_at is None,
    }


def app_view(
    app: App,
    owner: User | None,
    url: str,
    role: str | None = None,
    can_change: bool = False,
    vanity_full_url: str | None = None,
) -> dict:
    return {
        "id": app.id,
        "guid": app.guid,
        "name": app.name,
        "slug": app.slug,
        "title": app.title or app.name,
        "url": url,
        "owner_id": app.owner_id,
        "owner_guid": owner.guid if owner else None,
        "owner_username": owner.username if owner else None,
        "access_type": app.access_type,
        "host": app.host,
        "vanity_url": app.vanity_path is not None,  # Connect's flag (rsconnect keeps it)
        "vanity_path": app.vanity_path,
        "vanity_full_url": vanity_full_url,
        "replicas": app.replicas,
        "bundle_id": app.active_bundle_id,
        "active_bundle_id": app.active_bundle_id,
        "app_role": role,
        "can_change": can_change,
        "created_time": iso(app.created_at),
        "updated_time": iso(app.updated_at),
    }


def vanity_view(app: App, url: str | None) -> dict:
    """Connect's shape of a vanity URL (GET /__api__/v1/content/{guid}/vanity), and its URL."""
    return {
        "content_guid": app.guid,
        "path": app.vanity_path,
        "created_time": iso(app.vanity_created_at),
        "app_id": app.id,
        "url": url,
    }


def bundle_view(bundle: Bundle, active_id: int | None) -> dict:
    manifest = json.loads(bundle.manifest) if bundle.manifest else None
    packages = (
        sorted((manifest or {}).get("packages") or {})
        if isinstance((manifest or {}).get("packages"), dict)
        else []
    )
    return {
        "id": bundle.id,
        "app_id": bundle.app_id,
        "sha256": bundle.sha256,
        "size": bundle.size,
        "created_by": bundle.created_by,
        "created_time": iso(bundle.created_at),
        "deployed_time": iso(bundle.deployed_at),
        "active": bundle.id == active_id,
        "kept_version": bundle.deployed_at is not None,
        "packages": packages,
    }
