"""The Backend interface: both implementations satisfy it, the CLI picks one and knows
neither, and an AppSpec travels whole to another process."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from platform_manifest_checks import write_app
from plumbline.platform.backend import Backend
from plumbline.platform.cli.backends import open_backend
from plumbline.platform.kube.backend import KubernetesBackend
from plumbline.platform.local.backend import LocalBackend
from plumbline.platform.spec.appspec import AppSpec, SpecError, build_spec
from plumbline.platform.spec.codec import spec_from_json, spec_to_json
from support import EXAMPLE

TOML = """
replicas = 3
workers = 4
request_timeout = 9
image_pull_secrets = ["regcred"]
[env]
A = "1"
[secret_env]
DB = "db:password"
[resources]
cpu_limit = "2"
[ingress]
host = "api.example.com"
annotations = {"a.example.com/x" = "y"}
[rollout]
drain_delay_seconds = 0
[[volumes]]
name = "data"
kind = "csi"
source = "blob.csi.azure.com"
mount_path = "/data"
csi_attributes = {containerName = "models"}
[serve]
docs = false
"""


def _args(**given) -> argparse.Namespace:
    values = {"local": False, "context": None, "kubeconfig": None, "namespace": None}
    return argparse.Namespace(**{**values, **given})


def test_both_backends_implement_the_interface():
    assert isinstance(KubernetesBackend(), Backend)
    assert isinstance(LocalBackend(), Backend)


@pytest.mark.parametrize(
    "given, kind",
    [
        ({}, "kubernetes"),
        ({"local": True}, "local"),
        ({"context": "local"}, "local"),
        ({"context": "prod"}, "kubernetes"),
    ],
)
def test_the_cli_picks_the_backend(given, kind):
    assert open_backend(_args(**given)).kind == kind


def test_a_spec_travels_whole(tmp_path):
    plumber = write_app(
        tmp_path / "shop",
        "#* @get /a\nfunction() 1\n",
        toml=TOML,
        files={"entrypoint.R": "library(stats)\n"},
    )
    spec = build_spec(plumber, {"name": "shop", "labels": {"team": "data"}})
    again = spec_from_json(spec_to_json(spec))
    assert again == spec  # every field, the parsed plumber.R included
    assert again.serve_config == plumber.parent / "plumbline.toml"
    assert again.volumes[0].csi_attributes == {"containerName": "models"}
    assert again.secret_env == {"DB": ("db", "password")}


def test_a_shipped_spec_is_checked_again(tmp_path):
    plumber = write_app(tmp_path / "shop", "#* @get /a\nfunction() 1\n")
    data = spec_to_json(build_spec(plumber, {}))
    with pytest.raises(SpecError, match="must be a DNS label"):
        spec_from_json({**data, "name": "Not A Name"})
    with pytest.raises(SpecError, match="expected int"):
        spec_from_json({**data, "replicas": "3"})
    with pytest.raises(SpecError, match="unknown fields"):
        spec_from_json({**data, "command": "rm -rf /"})
    plumber.write_text("#* @get\nfunction() 1\n")
    with pytest.raises(SpecError, match="No path specified"):
        spec_from_json(data)


def test_the_spec_round_trip_covers_every_field():
    shipped = {f.name for f in dataclasses.fields(AppSpec)} - {"api"}
    assert shipped <= set(spec_to_json(build_spec(EXAMPLE, {})))
