"""checkov (offline) scans every object plumbline puts in a cluster: `plumbline render` of
the example app (ConfigMap route), of an app with R packages, of an app published to the
server (fetched bundle, token Secret), and both charts. Every check passes but the
documented exceptions of docs/cluster.md (#hardening), each only where it is documented to
apply; pinned by digest and outside the default namespace, the apps pass everything."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import helm_python as helm
import pytest
from r_repository import manifest_json

from plumbline.platform.kube.manifests import render, render_yaml
from plumbline.platform.spec.appspec import BundleSource, build_spec
from support import EXAMPLE_DIR, REPO

pytestmark = pytest.mark.slow  # checkov takes a few seconds

DIGEST = "sha256:" + "ab" * 32
# check id -> where it may fail (a predicate on the scanned file's name) and why.
EXCEPTIONS = {
    "CKV_K8S_21": (
        lambda name: name.startswith("default-namespace"),
        "the user chose the default namespace",
    ),
    "CKV_K8S_43": (
        lambda name: "unpinned" in name,
        "the image is not pinned by digest (--image-digest pins it)",
    ),
    "CKV_K8S_38": (
        lambda name: name.startswith("server-chart"),
        "plumbline server calls the Kubernetes API with its service account",
    ),
}


def checkov() -> str:
    """checkov of this environment (the test extra installs it)."""
    return str(Path(sys.executable).with_name("checkov"))


def chart(path: Path, values: dict, namespace: str) -> str:
    with helm.Chart.load(path) as loaded:
        rendered = loaded.render(values=values, name="plumbline", namespace=namespace)
    return "\n---\n".join(
        text
        for name, text in sorted(rendered.items())
        if not name.endswith("NOTES.txt") and text.strip()
    )


def package_app(folder: Path) -> Path:
    folder.mkdir()
    (folder / "plumber.R").write_text("#* @get /a\nfunction() 1\n")
    (folder / "manifest.json").write_text(
        manifest_json({"ranger": "0.16.0"}, "https://cloud.r-project.org")
    )
    return folder


def scanned(tmp_path: Path) -> dict[str, str]:
    """File name -> YAML: what plumbline renders, in each of the ways it renders it."""
    packages = package_app(tmp_path / "model-api")
    pinned = {"namespace": "apps", "image_digest": DIGEST}
    published = dataclasses.replace(
        build_spec(packages, {**pinned, "network_policy.server_namespace": "plumbline"}),
        bundle_source=BundleSource(
            "http://plumbline.plumbline.svc:3939/__api__/v1/bundles/7/download",
            "cd" * 32,
            "plb_" + "t" * 40,
            ("ab" * 32,),  # a key-only app: its digests mounted from the same Secret
        ),
    )
    app_values = {"app": {"files": {"plumber.R": "#* @get /a\nfunction() 1\n"}}}
    return {
        "default-namespace-unpinned-example.yaml": render_yaml(
            render(build_spec(EXAMPLE_DIR, {"name": "parity"}))
        ),
        "pinned-example.yaml": render_yaml(render(build_spec(EXAMPLE_DIR, pinned))),
        "pinned-packages.yaml": render_yaml(render(build_spec(packages, pinned))),
        "pinned-published.yaml": render_yaml(render(published)),
        "unpinned-app-chart.yaml": chart(REPO / "charts" / "plumbline-app", app_values, "apps"),
        "pinned-app-chart.yaml": chart(
            REPO / "charts" / "plumbline-app",
            {**app_values, "imageDigest": DIGEST, "imagePullPolicy": "IfNotPresent"},
            "apps",
        ),
        "server-chart-unpinned.yaml": chart(REPO / "charts" / "plumbline-server", {}, "plumbline"),
        "server-chart-pinned.yaml": chart(
            REPO / "charts" / "plumbline-server",
            {"imageDigest": DIGEST, "imagePullPolicy": "IfNotPresent"},
            "plumbline",
        ),
    }


def test_checkov_passes_everything_but_the_documented_exceptions(tmp_path):
    files = scanned(tmp_path)
    folder = tmp_path / "scan"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    proc = subprocess.run(
        [
            checkov(),
            "-d",
            str(folder),
            "--framework",
            "kubernetes",
            "--skip-download",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": ""},
    )
    report = json.loads(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    summary = reports[0]["summary"]
    assert summary["parsing_errors"] == 0 and summary["resource_count"] >= 40, summary
    failed = [
        (c["check_id"], Path(c["file_path"]).name, c["resource"])
        for r in reports
        for c in r["results"]["failed_checks"]
    ]
    unexpected = [f for f in failed if f[0] not in EXCEPTIONS or not EXCEPTIONS[f[0]][0](f[1])]
    assert unexpected == [], unexpected
    # Each exception shows where documented (the scan would catch a fix or a regression).
    assert {check for check, _, _ in failed} == set(EXCEPTIONS)
    passed = {Path(c["file_path"]).name for r in reports for c in r["results"]["passed_checks"]}
    assert passed == set(files)


def test_the_exceptions_are_documented():
    doc = (REPO / "docs" / "cluster.md").read_text()
    section = re.search(r"## Hardening\n(.*?)(\n## |\Z)", doc, re.S).group(1)
    for check in EXCEPTIONS:
        assert check in section, f"{check} is not documented in docs/cluster.md#hardening"
