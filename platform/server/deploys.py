"""What the server does to apps through the Backend interface, each as a task.

deploy: extract the bundle into its own version folder, check it (plumber.R, R syntax, the
bundle's plumbline.toml), build the AppSpec and hand it to `backend.deploy()`; only when
the rollout succeeded does the version become the active one. A rollback is a deploy of a
kept version. Anything that fails before the backend is called changes nothing that runs;
a rollout that fails is undone by the backend, and the active version stays.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from pathlib import Path

from sqlalchemy import select

from plumbline.platform.backend import AppRef, Backend, BackendError, NoSuchApp
from plumbline.platform.server import auth
from plumbline.platform.server.bundles import BundleError, BundleStore, Limits, extract
from plumbline.platform.server.config import ServerConfig
from plumbline.packages.requirements import RequirementsError, find_requirements
from plumbline.platform.server.db import App, Bundle, Database, utcnow
from plumbline.platform.server.fetch import download_path, forget_expired, mint_token
from plumbline.platform.server.tasks import TaskContext, TaskFailed, TaskRunner
from plumbline.platform.server.validate import check_app_folder
from plumbline.platform.server.vanity import ingress_alias
from plumbline.platform.spec.appspec import AppSpec, BundleSource, SpecError, build_spec

log = logging.getLogger("plumbline.server.deploys")
CONTENT_PREFIX = "/content"
MANIFEST_LIMIT = 4 * 1024 * 1024


def content_path(name: str) -> str:
    return f"{CONTENT_PREFIX}/{name}"


class Deployer:
    def __init__(
        self,
        db: Database,
        store: BundleStore,
        backend: Backend,
        config: ServerConfig,
        tasks: TaskRunner,
    ):
        self.db, self.store, self.backend = db, store, backend
        self.config, self.tasks = config, tasks
        self.limits = store.limits
        config.apps_dir.mkdir(parents=True, exist_ok=True)
        self.access_dir = config.data_dir / "access"
        self.access_dir.mkdir(exist_ok=True)
        self.metrics_key_digest = ""  # the scrape key's digest (traffic/): reads /metrics

    def ref(self, app: App) -> AppRef:
        return AppRef(app.slug, self.config.namespace)

    # ---- tasks ----------------------------------------------------------------------

    def submit_deploy(self, app_id: int, bundle_id: int, user_id: int | None) -> str:
        return self.tasks.submit(
            "deploy",
            lambda ctx: self._deploy(ctx, app_id, bundle_id),
            app_id=app_id,
            user_id=user_id,
            bundle_id=bundle_id,
        )

    def submit_restart(self, app_id: int, user_id: int | None) -> str:
        return self.tasks.submit(
            "restart", lambda ctx: self._restart(ctx, app_id), app_id=app_id, user_id=user_id
        )

    def submit_scale(self, app_id: int, replicas: int, user_id: int | None) -> str:
        return self.tasks.submit(
            "scale", lambda ctx: self._scale(ctx, app_id, replicas), app_id=app_id, user_id=user_id
        )

    def submit_delete(self, app_id: int, user_id: int | None) -> str:
        return self.tasks.submit(
            "delete", lambda ctx: self._delete(ctx, app_id), app_id=app_id, user_id=user_id
        )

    # ---- deploy ---------------------------------------------------------------------

    def version_dir(self, app_id: int, bundle_id: int) -> Path:
        return self.config.apps_dir / str(app_id) / str(bundle_id)

    def _deploy(self, ctx: TaskContext, app_id: int, bundle_id: int) -> None:
        with self.db.session() as s:
            app, bundle = s.get(App, app_id), s.get(Bundle, bundle_id)
            if app is None or bundle is None or bundle.app_id != app_id:
                raise TaskFailed(f"bundle {bundle_id} is not a bundle of app {app_id}")
            rollback = bundle.deployed_at is not None and app.active_bundle_id != bundle.id
            ctx.emit(
                f"{'Rolling back' if rollback else 'Deploying'} {app.name}: bundle "
                f"{bundle.id} ({_size(bundle.size)}, sha256 {bundle.sha256[:12]})"
            )
        folder = self.version_dir(app_id, bundle_id)
        if not folder.is_dir():
            archive = self.store.path_of(bundle.sha256)
            if not archive.is_file():
                raise TaskFailed(
                    f"bundle {bundle_id} is no longer stored (removed by the "
                    "retention setting); upload it again"
                )
            ctx.emit("Extracting the bundle")
            folder.parent.mkdir(parents=True, exist_ok=True)
            try:
                extract(archive, folder, self.limits)
            except BundleError as exc:
                raise TaskFailed(_noted(exc, "nothing was changed")) from None
        ctx.emit("Checking plumber.R, the R syntax of every .R file and plumbline.toml")
        try:
            check_app_folder(folder)
            requirements = find_requirements(folder)
        except (BundleError, RequirementsError) as exc:
            raise TaskFailed(
                _noted(exc, "nothing was changed (the running version keeps serving)")
            ) from None
        if requirements:
            who = "the pods' init container" if self.backend.kind == "kubernetes" else "the server"
            ctx.emit(
                f"R packages: {len(requirements.packages)} listed in {requirements.file}; "
                f"{who} provides those the runtime lacks"
            )
        with self.db.session() as s:
            s.get(Bundle, bundle_id).manifest = _manifest(folder)
            app = s.get(App, app_id)
            spec = self._spec(s, app, folder, s.get(Bundle, bundle_id))
        ctx.emit(
            f"Rolling out to the {self.backend.kind} backend "
            f"({spec.replicas} replica{'s' if spec.replicas != 1 else ''})"
        )
        try:
            result = self.backend.deploy(
                spec, emit=ctx.emit, wait=True, timeout=self.config.deploy_timeout
            )
        except (BackendError, SpecError) as exc:
            raise TaskFailed(self._explain(exc)) from None
        if not result.ok:
            raise TaskFailed(f"{result.verdict} (the previous version keeps serving)")
        with self.db.session() as s:
            app, bundle = s.get(App, app_id), s.get(Bundle, bundle_id)
            app.active_bundle_id = bundle.id
            app.updated_at = bundle.deployed_at = utcnow()
            removed = self._apply_retention(s, app)
            url = self.app_url(app)
        for old in removed:
            ctx.emit(f"Removed bundle {old} (beyond the {self.config.retention} kept versions)")
        ctx.emit(result.verdict)
        ctx.emit(f"Serving bundle {bundle_id} at {url}")
        ctx.result = {"bundle_id": bundle_id, "url": url}

    def _explain(self, exc: Exception) -> str:
        return _noted(str(exc).removeprefix("refused: "), "nothing was changed")

    def _spec(self, s, app: App, folder: Path, bundle: Bundle) -> AppSpec:
        """The version's AppSpec. On Kubernetes its pods fetch the bundle with a fresh token
        (no ConfigMap, so no size limit); locally the replicas run from `folder`."""
        config = self.config
        flags: dict = {
            "name": app.slug,
            "namespace": config.namespace,
            "replicas": app.replicas,
            "ingress.path_prefix": content_path(app.slug),
            "env": self.access_env(s, app),
            "packages.repos": list(config.repos) or None,
        }
        if app.host:
            flags["ingress.host"] = app.host
        if app.vanity_path:
            flags["ingress.path_aliases"] = [ingress_alias(app.vanity_path)]
        kubernetes = self.backend.kind == "kubernetes"
        if kubernetes:
            flags.update(
                {
                    "image": config.image,
                    "image_digest": config.image_digest,
                    "packages.cache_claim": config.package_cache_claim,
                    "network_policy.enabled": config.network_policy,
                    "network_policy.ingress_namespace": config.ingress_namespace,
                    "network_policy.server_namespace": config.server_namespace or config.namespace,
                }
            )
        else:
            flags["packages.cache_dir"] = str(config.package_dir.resolve())
        try:
            spec = build_spec(folder / "plumber.R", flags)
            if kubernetes:
                token = mint_token(s, bundle.id, config.bundle_token_ttl)
                url = config.bundle_fetch_url.rstrip("/") + download_path(bundle.id)
                keys = auth.key_hashes_for_app(s, app) if app.access_type != "all" else None
                spec = dataclasses.replace(
                    spec,
                    bundle_source=BundleSource(
                        url, bundle.sha256, token, None if keys is None else tuple(keys)
                    ),
                )
            return spec
        except SpecError as exc:
            raise TaskFailed(_noted(exc, "nothing was changed")) from None

    def renew_tokens(self) -> int:
        """Kubernetes: a fresh download token for every active version's pods (the Secret
        changes, the pod template does not: nothing rolls out). Returns how many."""
        if self.backend.kind != "kubernetes":
            return 0
        with self.db.session() as s:
            forget_expired(s)
            active = [
                (a.id, a.active_bundle_id)
                for a in s.scalars(select(App).where(App.active_bundle_id.is_not(None)))
            ]
        renewed = 0
        for app_id, bundle_id in active:
            with self.tasks.app_lock(app_id):  # never beside a deploy of the same app
                try:
                    renewed += self._reapply(app_id, bundle_id, lambda _line: None)
                except (BackendError, SpecError, TaskFailed) as exc:
                    log.warning("could not renew the bundle token of app %s: %s", app_id, exc)
        return renewed

    def _reapply(self, app_id: int, bundle_id: int | None, emit) -> bool:
        """Kubernetes: apply the active version's objects again with a fresh token and the
        current key digests, without waiting. Only the version's Secret changes, so nothing
        rolls out. False when `bundle_id` is no longer the active version."""
        with self.db.session() as s:
            app = s.get(App, app_id)
            if app is None or app.active_bundle_id is None:
                return False
            if bundle_id is not None and app.active_bundle_id != bundle_id:
                return False
            folder = self.version_dir(app_id, app.active_bundle_id)
            if not folder.is_dir():
                return False
            spec = self._spec(s, app, folder, s.get(Bundle, app.active_bundle_id))
        self.backend.deploy(spec, emit=emit, wait=False)
        return True

    # ---- access -----------------------------------------------------------------------

    def access_env(self, s, app: App) -> dict[str, str]:
        """The runtime settings that put the app under its path and enforce its access."""
        env = {
            "PLUMBLINE_ROOT_PATH": content_path(app.slug),
            # The vanity path: the local ingress strips it, a Kubernetes Ingress passes it on.
            "PLUMBLINE_ROOT_PATH_ALIASES": (
                ingress_alias(app.vanity_path)
                if app.vanity_path and self.backend.kind != "local"
                else ""
            ),
            "PLUMBLINE_ACCESS": "public",
            "PLUMBLINE_ACCESS_KEYS": "",
            "PLUMBLINE_ACCESS_KEYS_FILE": "",
            # The server's scraper reads /metrics with its key; through the ingress, nobody
            # else does, public app or not. The key reads /metrics, no more.
            "PLUMBLINE_METRICS_KEYS": self.metrics_key_digest,
        }
        if app.access_type == "all":
            return env
        env["PLUMBLINE_ACCESS"] = "keys"
        # Replicas re-read a file of digests, so changes need no restart: locally the
        # server writes it; on Kubernetes the pods mount it from the version's Secret
        # (the bundle source's access_keys, see _spec).
        if self.backend.kind == "local":
            env["PLUMBLINE_ACCESS_KEYS_FILE"] = str(self.write_access_file(s, app))
        return env

    def write_access_file(self, s, app: App) -> Path:
        path = (self.access_dir / f"{app.id}.keys").resolve()
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(h + "\n" for h in auth.key_hashes_for_app(s, app)))
        tmp.replace(path)
        return path

    def refresh_access(self, app_ids: list[int] | None = None, user_id: int | None = None) -> None:
        """Keys, users or grants changed: bring every affected key-only app up to date."""
        with self.db.session() as s:
            query = select(App).where(App.access_type != "all")
            if app_ids is not None:
                query = query.where(App.id.in_(app_ids))
            apps = list(s.scalars(query))
            for app in apps:
                if self.backend.kind == "local":
                    self.write_access_file(s, app)
                elif app.active_bundle_id is not None:
                    self.tasks.submit(
                        "access",
                        lambda ctx, app_id=app.id: self._update_access(ctx, app_id),
                        app_id=app.id,
                        user_id=user_id,
                    )

    def _update_access(self, ctx: TaskContext, app_id: int) -> None:
        ctx.emit("Writing the app's allowed key digests into its version's Secret (no rollout)")
        try:
            if not self._reapply(app_id, None, ctx.emit):
                ctx.emit("No active version to update")
                return
        except (BackendError, SpecError) as exc:
            raise TaskFailed(self._explain(exc)) from None
        ctx.emit("The pods read the new digests once the kubelet has updated the file")

    def reconcile(self) -> list[str]:
        """After a start: every app with an active version that its backend does not run
        (the local backend's apps stop with the server) is deployed again."""
        with self.db.session() as s:
            apps = [
                (a.id, a.active_bundle_id, self.ref(a))
                for a in s.scalars(select(App).where(App.active_bundle_id.is_not(None)))
            ]
        started = []
        for app_id, bundle_id, ref in apps:
            try:
                self.backend.status(ref)
                continue
            except NoSuchApp:
                pass
            except BackendError:
                pass  # the backend cannot say: deploying again is what brings it back
            started.append(self.submit_deploy(app_id, bundle_id, None))
        return started

    # ---- versions -------------------------------------------------------------------

    def _apply_retention(self, s, app: App) -> list[int]:
        """Keep the newest `retention` deployed versions and the active one; drop the rest,
        and bundles that never deployed and are older than the active one."""
        bundles = list(
            s.scalars(select(Bundle).where(Bundle.app_id == app.id).order_by(Bundle.id.desc()))
        )
        deployed = [b for b in bundles if b.deployed_at is not None]
        keep = {b.id for b in deployed[: self.config.retention]} | {app.active_bundle_id}
        drop = [
            b
            for b in bundles
            if b.id not in keep
            and (b.deployed_at is not None or b.id < (app.active_bundle_id or 0))
        ]
        for bundle in drop:
            s.delete(bundle)
        s.flush()
        for bundle in drop:
            shutil.rmtree(self.version_dir(app.id, bundle.id), ignore_errors=True)
            if s.scalar(select(Bundle.id).where(Bundle.sha256 == bundle.sha256).limit(1)) is None:
                self.store.delete(bundle.sha256)
        return [b.id for b in drop]

    def app_url(self, app: App) -> str:
        return self._apps_base(app) + content_path(app.slug) + "/"

    def vanity_url(self, app: App) -> str | None:
        return self._apps_base(app) + app.vanity_path if app.vanity_path else None

    def _apps_base(self, app: App) -> str:
        if app.host:
            return f"http://{app.host}"
        return (self.config.apps_url or self.config.url).rstrip("/")

    # ---- restart, scale, delete ------------------------------------------------------

    def _app(self, app_id: int) -> App:
        with self.db.session() as s:
            app = s.get(App, app_id)
            if app is None:
                raise TaskFailed(f"no app {app_id}")
            return app

    def _restart(self, ctx: TaskContext, app_id: int) -> None:
        app = self._app(app_id)
        ctx.emit(f"Restarting {app.name}, one replica at a time")
        self._finish(
            ctx,
            lambda: self.backend.restart(
                self.ref(app), emit=ctx.emit, timeout=self.config.deploy_timeout
            ),
        )

    def _scale(self, ctx: TaskContext, app_id: int, replicas: int) -> None:
        app = self._app(app_id)
        ctx.emit(f"Scaling {app.name} to {replicas} replicas")
        self._finish(
            ctx,
            lambda: self.backend.scale(
                self.ref(app), replicas, emit=ctx.emit, timeout=self.config.deploy_timeout
            ),
        )
        with self.db.session() as s:
            s.get(App, app_id).replicas = replicas

    def _delete(self, ctx: TaskContext, app_id: int) -> None:
        app = self._app(app_id)
        if app.active_bundle_id is not None:
            ctx.emit(f"Removing {app.name} from the {self.backend.kind} backend")
            self._finish(ctx, lambda: self.backend.delete(self.ref(app), emit=ctx.emit))
        with self.db.session() as s:
            shas = list(s.scalars(select(Bundle.sha256).where(Bundle.app_id == app_id)))
            s.delete(s.get(App, app_id))
            s.flush()
            orphans = [
                sha
                for sha in shas
                if s.scalar(select(Bundle.id).where(Bundle.sha256 == sha).limit(1)) is None
            ]
        shutil.rmtree(self.config.apps_dir / str(app_id), ignore_errors=True)
        (self.access_dir / f"{app_id}.keys").unlink(missing_ok=True)
        for sha in orphans:
            self.store.delete(sha)
        ctx.emit(f"Deleted {app.name}")

    @staticmethod
    def _finish(ctx: TaskContext, operation) -> None:
        try:
            result = operation()
        except BackendError as exc:
            raise TaskFailed(str(exc)) from None
        if not result.ok:
            raise TaskFailed(result.verdict)
        ctx.emit(result.verdict)


def _manifest(folder: Path) -> str | None:
    """The bundle's manifest.json (rsconnect's: its R packages), kept for the versions list."""
    path = folder / "manifest.json"
    try:
        if path.is_file() and not path.is_symlink() and path.stat().st_size <= MANIFEST_LIMIT:
            text = path.read_text(encoding="utf-8")
            json.loads(text)
            return text
    except (OSError, ValueError):
        pass
    return None


def _noted(message, note: str) -> str:
    """The note at the end of the message's first line (R's code excerpt stays below)."""
    first, newline, rest = str(message).partition("\n")
    return f"{first}; {note}{newline}{rest}"


def _size(size: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


def store_limits(config: ServerConfig) -> Limits:
    return Limits(config.max_bundle_size, config.max_expanded_size, config.max_bundle_files)
