"""The done-when flow of R packages, for real: an R user installs a package from their own
CRAN-like repository (built by the test, served over HTTP on loopback), writes a plumber.R
that uses it and reads a 50 MB model file, and publishes with rsconnect. The runtime has
no such package and there is no Dockerfile: the server installs it in the deploy task, into
its shared library cache, and the app serves on the local backend. A second app with the
same set of packages reuses that library; a bundle whose package cannot be installed fails
its task with R's message and changes nothing. The same bundle then renders for Kubernetes,
with the init container that fetches it, and validates.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
from platform_manifest_checks import validate_all
from r_repository import LocalRepository, RPackage, install_into, manifest_json
from rsconnect_harness import deploy_api
from server_process import ServerProcess

from plumbline.platform.kube.manifests import render

pytestmark = [
    pytest.mark.slow,  # real R, rsconnect and HAProxy (scripts/install.sh)
    pytest.mark.xdist_group("server_packages_e2e"),  # one server, tests in file order
]

MODEL = 50 * 1024 * 1024
APP_R = """\
library(plumblinetest)
model <- file.size("model.bin")

#* @serializer text
#* @get /predict
function(x = "R") paste(greet(x), model)
"""


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    repository = LocalRepository(tmp_path_factory.mktemp("cran") / "repo")
    repository.add(RPackage("plumblinetest", "1.0.0", 'greet <- function(x) paste("hello", x)'))
    repository.add(RPackage("plumblinebroken", "1.0.0", "f <- function() 1", fail_install=True))
    url = repository.serve()
    yield repository, url
    repository.stop()


@pytest.fixture(scope="module")
def user_library(repo, tmp_path_factory):
    """The R user's own library: the package installed from their repository."""
    library = tmp_path_factory.mktemp("user-library")
    install_into(library, repo[1], "plumblinetest")
    return library


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = ServerProcess(tmp_path_factory.mktemp("server"))
    srv.start()
    srv.alice_key = srv.add_publisher("alice")
    yield srv
    srv.stop()
    assert srv.process.returncode == 0, srv.log.read_text()[-3000:]


def model_app(root: Path, name: str) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "plumber.R").write_text(APP_R)
    with open(folder / "model.bin", "wb") as f:  # incompressible: the bundle is 50 MB too
        for _ in range(MODEL // 2**20):
            f.write(os.urandom(2**20))
    return folder


def last_task(server, app: str) -> dict:
    alice = server.client(server.alice_key)
    tasks = alice.get(f"/__api__/v1/apps/{app}/tasks").json()["tasks"]
    return server.wait_task(server.alice_key, tasks[0]["id"])


def publish_with_rsconnect(server, folder, name, repo_url, library, home):
    done = deploy_api(
        home, server.url, server.alice_key, "alice", folder, name, repos=repo_url, library=library
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_rsconnect_publishes_an_app_with_a_package_the_runtime_lacks(
    server, repo, user_library, tmp_path
):
    folder = model_app(tmp_path, "model-api")
    publish_with_rsconnect(server, folder, "model-api", repo[1], user_library, tmp_path / "home")
    task = last_task(server, "model-api")
    installs = [line for line in task["output"] if line.startswith("R packages: installing")]
    assert len(installs) == 1 and "plumblinetest 1.0.0" in installs[0], task["output"]
    assert repo[1] in installs[0]  # the bundle's own repository, as rsconnect recorded it
    reply = server.client(server.alice_key, server.apps).get(
        "/content/model-api/predict", params={"x": "Ada"}
    )
    assert (reply.status_code, reply.text) == (200, f"hello Ada {MODEL}")
    versions = (
        server.client(server.alice_key)
        .get("/__api__/v1/apps/model-api/versions")
        .json()["versions"]
    )
    assert "plumblinetest" in versions[0]["packages"] and versions[0]["size"] > MODEL


def test_a_second_app_with_the_same_packages_reuses_the_library(
    server, repo, user_library, tmp_path
):
    folder = tmp_path / "second-api"
    folder.mkdir()
    (folder / "plumber.R").write_text(APP_R.replace('file.size("model.bin")', "0"))
    publish_with_rsconnect(server, folder, "second-api", repo[1], user_library, tmp_path / "home")
    output = last_task(server, "second-api")["output"]
    assert not [line for line in output if line.startswith("R packages: installing")], output
    assert any("using the cached library" in line for line in output), output
    libraries = [p for p in (server.data / "R-libraries").iterdir() if not p.name.startswith(".")]
    assert len(libraries) == 1
    reply = server.client(server.alice_key, server.apps).get("/content/second-api/predict")
    assert (reply.status_code, reply.text) == (200, "hello R 0")


def test_a_package_that_cannot_be_installed_fails_and_changes_nothing(server, repo, tmp_path):
    folder = tmp_path / "model-api"
    folder.mkdir()
    (folder / "plumber.R").write_text("library(plumblinebroken)\n#* @get /predict\nfunction() 1\n")
    (folder / "manifest.json").write_text(
        manifest_json({"plumblinebroken": "1.0.0"}, repo[1], source="LOCAL")
    )
    done = server.publish(folder)
    assert done.returncode == 1
    assert "plumblinebroken 1.0.0" in done.stdout
    assert "this package refuses to be installed" in done.stdout  # R's own message
    assert "nothing was changed" in done.stdout
    reply = server.client(server.alice_key, server.apps).get("/content/model-api/predict")
    assert (reply.status_code, reply.text) == (200, f"hello R {MODEL}")


def test_the_same_bundle_renders_for_kubernetes_with_the_init_container(server, tmp_path):
    """What `--backend kubernetes` would apply for model-api's active version."""
    from plumbline.platform.server.bundles import BundleStore
    from plumbline.platform.server.config import ServerConfig
    from plumbline.platform.server.db import App, Bundle, Database
    from plumbline.platform.server.deploys import Deployer, store_limits
    from plumbline.platform.server.tasks import TaskRunner

    class Cluster:  # where the objects would go: only its kind matters to the spec
        kind = "kubernetes"

    data = tmp_path / "data"  # a copy: this server's own state stays untouched
    shutil.copytree(server.data, data, ignore=shutil.ignore_patterns("R-libraries"))
    config = ServerConfig(
        data_dir=data,
        backend="kubernetes",
        namespace="apps",
        fetch_url="http://plumbline.plumbline.svc.cluster.local:3939",
        package_cache_claim="r-packages",
        server_namespace="plumbline",
    )
    db = Database(config.sqlalchemy_url())
    deployer = Deployer(
        db,
        BundleStore(config.bundle_dir, store_limits(config)),
        Cluster(),
        config,
        TaskRunner(db, 1),
    )
    with db.session() as s:
        app = s.query(App).filter_by(name="model-api").one()
        bundle = s.get(Bundle, app.active_bundle_id)
        spec = deployer._spec(s, app, deployer.version_dir(app.id, bundle.id), bundle)
        sha256 = bundle.sha256
    db.dispose()
    objects = render(spec)
    validate_all(objects)
    kinds = [o["kind"] for o in objects]
    assert "ConfigMap" not in kinds and kinds[0] == "Secret" and "NetworkPolicy" in kinds
    pod = next(o for o in objects if o["kind"] == "Deployment")["spec"]["template"]["spec"]
    init = pod["initContainers"][0]
    assert init["command"][:4] == ["plumbline", "prepare", "/bundle/app", "--fetch"]
    assert init["command"][4].startswith(
        "http://plumbline.plumbline.svc.cluster.local:3939/__api__/v1/bundles/"
    )
    assert init["command"][6] == sha256
    assert init["command"][7:9] == ["--token-file", "/var/run/plumbline/token"]
    assert (
        hashlib.sha256(
            (data / "bundles" / sha256[:2] / f"{sha256}.tar.gz").read_bytes()
        ).hexdigest()
        == sha256
    )
    assert {"name": "package-cache", "persistentVolumeClaim": {"claimName": "r-packages"}} in pod[
        "volumes"
    ]
    serve = pod["containers"][0]["command"]
    assert serve[serve.index("--packages") + 1] == "cached"
