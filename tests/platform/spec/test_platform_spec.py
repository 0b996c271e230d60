"""build_spec: flags over plumbline.toml over defaults, strictly."""

from __future__ import annotations

import pytest

from platform_manifest_checks import write_app
from support import REPO
from plumbline.platform.kube.manifests import render
from plumbline.platform.spec.appspec import DEFAULT_IMAGE, SpecError, build_spec

API = "#* @get /a\nfunction() 1\n"


def test_platform_spec_flags_win_over_the_file_which_wins_over_defaults(tmp_path):
    plumber = write_app(
        tmp_path / "my_app",
        API,
        toml="""
        name = "from-file"
        replicas = 4
        workers = 3
        [env]
        A = "file"
        B = "file"
        [resources]
        cpu_limit = "2"
        [ingress]
        host = "api.example.com"
    """,
    )
    spec = build_spec(
        plumber,
        {"replicas": 5, "env": {"B": "flag"}, "ingress.class_name": "nginx", "workers": None},
    )
    assert spec.name == "from-file"
    assert spec.replicas == 5  # flag over file
    assert spec.workers == 3  # file over default (a None flag is "not given")
    assert spec.env == {"A": "file", "B": "flag"}  # maps merge key by key
    assert spec.resources.cpu_limit == "2" and spec.resources.cpu_request == "250m"
    assert (spec.ingress.host, spec.ingress.class_name) == ("api.example.com", "nginx")
    assert spec.image == DEFAULT_IMAGE and spec.namespace == "default"
    assert {"replicas", "workers", "resources.cpu_limit", "ingress.host"} <= spec.set_fields
    assert "image" not in spec.set_fields


def test_platform_spec_name_defaults_to_the_folder(tmp_path):
    assert build_spec(write_app(tmp_path / "Sales_API", API), {}).name == "sales-api"


def test_platform_spec_parses_the_plumber_file(tmp_path):
    spec = build_spec(write_app(tmp_path / "app", API), {})
    assert spec.endpoint_paths == ["/a"]
    broken = write_app(tmp_path / "broken", "#* @get\nfunction() 1\n")
    with pytest.raises(SpecError, match=r"plumber.R:1: No path specified"):
        build_spec(broken, {})


@pytest.mark.parametrize(
    "toml, message",
    [
        ("replicaz = 3", "unknown setting 'replicaz'"),
        ('replicas = "3"', "replicas: '3' must be a whole number"),
        ('[ingress]\nhots = "x"', "ingress: unknown setting 'hots'"),
        ("[env]\nPORT = 8000", "env.PORT: 8000 must be a string"),
        ('[resources]\ncpu_limit = "lots"', "not a Kubernetes quantity"),
        ('[secret_env]\nDB = "just-a-name"', "must be SECRET:KEY"),
        (
            '[[volumes]]\nname = "data"\nkind = "nfs"\nsource = "x"\nmount_path = "/data"',
            "kind 'nfs' is not one of pvc, secret, configmap, csi",
        ),
        (
            '[[volumes]]\nname = "data"\nkind = "pvc"\nsource = "x"\nmount_path = "/tmp"',
            "is used by plumbline",
        ),
        ('[ingress]\ntls_secret = "t"', "tls_secret needs ingress.host"),
        ('plumber_file = "other.R"', "unknown setting 'plumber_file'"),
        ("[serve]\nworkerz = 2", "unknown setting 'workerz' in [serve]"),
        ('labels = {"app.kubernetes.io/name" = "x"}', "set by plumbline"),
        ('name = "Bad_Name"', "must be a DNS label"),
        ("replicas = ", "not valid TOML"),
    ],
)
def test_platform_spec_refuses_bad_files_naming_key_and_file(tmp_path, toml, message):
    plumber = write_app(tmp_path / "app", API, toml=toml)
    with pytest.raises(SpecError) as refused:
        build_spec(plumber, {})
    assert message in str(refused.value)
    assert "plumbline.toml" in str(refused.value)


def test_platform_spec_refuses_bad_flags_naming_the_command_line(tmp_path):
    plumber = write_app(tmp_path / "app", API)
    with pytest.raises(SpecError, match="the command line: unknown setting 'replica'"):
        build_spec(plumber, {"replica": 3})
    with pytest.raises(SpecError, match="the command line: workers: 'two' must be a whole"):
        build_spec(plumber, {"workers": "two"})
    with pytest.raises(SpecError, match="cpu_request 3 is more than resources.cpu_limit 2"):
        build_spec(plumber, {"resources.cpu_limit": "2", "resources.cpu_request": "3"})
    with pytest.raises(SpecError, match="no such file"):
        build_spec(plumber, {}, tmp_path / "missing.toml")


def test_platform_spec_a_lone_low_limit_brings_the_request_down(tmp_path):
    spec = build_spec(
        write_app(tmp_path / "app", API),
        {"resources.cpu_limit": "100m", "resources.memory_limit": "128Mi"},
    )
    assert (spec.resources.cpu_request, spec.resources.memory_request) == ("100m", "128Mi")


def test_platform_spec_volumes_and_secret_refs_from_the_file(tmp_path):
    plumber = write_app(
        tmp_path / "app",
        API,
        toml="""
        image_pull_secrets = ["regcred"]
        [secret_env]
        DB_PASSWORD = "db-creds:password"
        [[volumes]]
        name = "blob"
        kind = "csi"
        source = "blob.csi.azure.com"
        mount_path = "/mnt/blob"
        csi_secret = "azure-storage"
        [volumes.csi_attributes]
        containerName = "models"
    """,
    )
    spec = build_spec(plumber, {})
    assert spec.secret_env == {"DB_PASSWORD": ("db-creds", "password")}
    (volume,) = spec.volumes
    assert (volume.kind, volume.csi_attributes, volume.read_only) == (
        "csi",
        {"containerName": "models"},
        True,
    )
    assert spec.image_pull_secrets == ("regcred",)


def test_platform_spec_serve_table_ships_with_the_app(tmp_path):
    plumber = write_app(
        tmp_path / "app",
        API,
        toml="""
        replicas = 2
        [serve]
        max-body = "1MiB"
    """,
    )
    spec = build_spec(plumber, {})
    assert spec.serve_config == (tmp_path / "app" / "plumbline.toml").resolve()
    assert spec.serve_config in spec.extra_files
    objects = {o["kind"]: o for o in render(spec)}
    command = objects["Deployment"]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[-2:] == ["--config", "/app/plumbline.toml"]
    assert 'max-body = "1MiB"' in objects["ConfigMap"]["data"]["plumbline.toml"]
    bad = write_app(tmp_path / "bad", API, toml='[serve]\nmax-body = "lots"')
    with pytest.raises(SpecError, match="max-body"):
        build_spec(bad, {})


def test_platform_spec_reference_doc_is_complete_and_valid(tmp_path):
    """docs/app-spec.md's example plumbline.toml names every setting and is accepted."""
    import dataclasses
    import re
    import tomllib
    import typing

    from plumbline.platform.spec.appspec import AppSpec

    doc = (REPO / "docs" / "app-spec.md").read_text()
    example = re.search(r"```toml\n(.*?)```", doc, re.S).group(1)
    table = tomllib.loads(example)
    internal = {
        "plumber_file",
        "api",
        "node_affinity",
        "deployment_overrides",
        "set_fields",
        "serve_config",
        "bundle_source",
    }
    hints = typing.get_type_hints(AppSpec)
    for name in set(hints) - internal:
        assert name in table, f"{name} is missing from docs/app-spec.md"
        if dataclasses.is_dataclass(hints[name]):
            assert set(table[name]) == {f.name for f in dataclasses.fields(hints[name])}, name
    plumber = write_app(
        tmp_path / "app", API, files={"model.rds": b"\x00", "data/x.csv": "a"}, toml=example
    )
    spec = build_spec(plumber, {})
    assert spec.name == "parity" and len(spec.volumes) == 2 and spec.serve_config is not None
