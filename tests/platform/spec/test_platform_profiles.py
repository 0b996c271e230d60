"""Job Launcher profiles: section precedence, defaults, ratios, refusals, overrides."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from platform_manifest_checks import by_kind, validate_all, write_app
from plumbline.platform.kube.manifests import render
from plumbline.platform.spec.profiles import (
    ProfileError,
    apply_overrides,
    apply_profile,
    parse_profiles,
    parse_profiles_text,
)
from plumbline.platform.spec.appspec import build_spec

API = "#* @get /a\nfunction() 1\n"

# The plugin documentation's example, plus ratios.
PROFILES = """
[*]
placement-constraints=node,region:us,region:eu
default-cpus=1
default-mem-mb=512
max-cpus=2
max-mem-mb=1024
container-images=r-session:3.4.2,r-session:3.5.0
default-container-image=r-session:3.5.0
allow-unknown-images=0
cpu-request-ratio=0.5

[@rstudio-power-users]
default-cpus=4
default-mem-mb=4096
default-nvidia-gpus=0
max-nvidia-gpus=2
max-cpus=20
max-mem-mb=20480
container-images=r-session:3.4.2,r-session:3.5.0,r-session:preview
allow-unknown-images=1

[jsmith]
max-cpus=3
"""


@pytest.fixture
def profiles(tmp_path) -> Path:
    path = tmp_path / "launcher.kubernetes.profiles.conf"
    path.write_text(PROFILES, encoding="utf-8")
    return path


@pytest.fixture
def plumber(tmp_path) -> Path:
    return write_app(tmp_path / "app", API)


def test_platform_profiles_later_matching_sections_override_earlier(profiles):
    p = parse_profiles(profiles)
    assert [s.name for s in p.sections] == ["*", "@rstudio-power-users", "jsmith"]
    everyone = p.effective("alice", [])
    assert everyone["max-cpus"].value == 2 and everyone["max-cpus"].section == "*"
    power = p.effective("alice", ["rstudio-power-users"])
    assert power["max-cpus"].value == 20 and power["max-cpus"].section == "@rstudio-power-users"
    assert power["default-mem-mb"].value == 4096
    assert power["cpu-request-ratio"].section == "*"  # not overridden: still applies
    jsmith = p.effective("jsmith", ["rstudio-power-users"])
    assert jsmith["max-cpus"].value == 3 and jsmith["max-cpus"].section == "jsmith"


def test_platform_profiles_defaults_and_ratios_fill_the_spec(plumber, profiles):
    spec = apply_profile(build_spec(plumber, {}), parse_profiles(profiles), "alice", [])
    r = spec.resources
    assert (r.cpu_limit, r.cpu_request) == ("1", "500m")  # default-cpus, ratio 0.5
    assert (r.memory_limit, r.memory_request) == ("512Mi", "256Mi")  # plumbline's request kept
    assert spec.image == "r-session:3.5.0"  # default-container-image
    power = apply_profile(
        build_spec(plumber, {}), parse_profiles(profiles), "bob", ["rstudio-power-users"]
    )
    assert (power.resources.cpu_limit, power.resources.cpu_request) == ("4", "2")
    assert power.resources.memory_limit == "4Gi"


def test_platform_profiles_refusals_name_the_limit_and_the_section(plumber, profiles):
    p = parse_profiles(profiles)
    with pytest.raises(ProfileError) as refused:
        apply_profile(build_spec(plumber, {"resources.cpu_limit": "3"}), p, "alice", [])
    message = str(refused.value)
    assert "cpu limit 3" in message and "max-cpus=2" in message and "[*]" in message
    assert f"{profiles}:6" in message
    # jsmith's own section allows 3 but not 4.
    assert (
        apply_profile(
            build_spec(plumber, {"resources.cpu_limit": "3"}), p, "jsmith", []
        ).resources.cpu_limit
        == "3"
    )
    with pytest.raises(ProfileError, match=r"max-cpus=3 from profile section \[jsmith\]"):
        apply_profile(build_spec(plumber, {"resources.cpu_limit": "4000m"}), p, "jsmith", [])
    with pytest.raises(ProfileError, match=r"memory limit 2Gi .* max-mem-mb=1024"):
        apply_profile(build_spec(plumber, {"resources.memory_limit": "2Gi"}), p, "alice", [])
    with pytest.raises(
        ProfileError,
        match=r"nvidia GPUs 3 .* max-nvidia-gpus=2 from profile "
        r"section \[@rstudio-power-users\]",
    ):
        apply_profile(
            build_spec(plumber, {"resources.nvidia_gpus": 3}), p, "bob", ["rstudio-power-users"]
        )


def test_platform_profiles_images_outside_the_list_are_refused(plumber, profiles):
    p = parse_profiles(profiles)
    with pytest.raises(ProfileError) as refused:
        apply_profile(build_spec(plumber, {"image": "me/own:1"}), p, "alice", [])
    assert "image me/own:1 is not an allowed image" in str(refused.value)
    assert "allow-unknown-images=0 from profile section [*]" in str(refused.value)
    ok = apply_profile(build_spec(plumber, {"image": "r-session:3.4.2"}), p, "alice", [])
    assert ok.image == "r-session:3.4.2"
    power = apply_profile(
        build_spec(plumber, {"image": "me/own:1"}), p, "bob", ["rstudio-power-users"]
    )
    assert power.image == "me/own:1"  # allow-unknown-images=1 in the later section


def test_platform_profiles_placement_constraints_become_node_selection(plumber, profiles):
    p = parse_profiles(profiles)
    free = apply_profile(build_spec(plumber, {}), p, "alice", [])
    assert free.node_selector == {}
    assert free.node_affinity == {"region": ("us", "eu")}  # must land in an offered region
    chosen = apply_profile(
        build_spec(plumber, {"node_selector": {"region": "eu", "node": "n1"}}), p, "alice", []
    )
    assert chosen.node_selector == {"region": "eu", "node": "n1"} and chosen.node_affinity == {}
    with pytest.raises(ProfileError, match="region=asia is not an allowed value"):
        apply_profile(build_spec(plumber, {"node_selector": {"region": "asia"}}), p, "alice", [])
    with pytest.raises(ProfileError, match="gpu=yes is not among the placement constraints"):
        apply_profile(build_spec(plumber, {"node_selector": {"gpu": "yes"}}), p, "alice", [])
    pinned = parse_profiles_text("[*]\nplacement-constraints=pool:r-apps\n")
    spec = apply_profile(build_spec(plumber, {}), pinned, "alice", [])
    pod = by_kind(render(spec))["Deployment"]["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"pool": "r-apps"}
    affinity = by_kind(render(free))["Deployment"]["spec"]["template"]["spec"]["affinity"]
    term = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["nodeSelectorTerms"][0]["matchExpressions"] == [
        {"key": "region", "operator": "In", "values": ["us", "eu"]}
    ]
    validate_all(render(free))


def test_platform_profiles_job_json_overrides_patch_the_deployment(plumber, tmp_path):
    aliases = [
        {"ip": "10.2.141.12", "hostnames": ["db01"]},
        {"ip": "10.2.141.13", "hostnames": ["db02"]},
    ]
    (tmp_path / "kube-host-aliases").write_text(json.dumps(aliases))
    (tmp_path / "tolerations.json").write_text(
        json.dumps(
            [{"key": "dedicated", "operator": "Equal", "value": "r", "effect": "NoSchedule"}]
        )
    )
    (tmp_path / "priority.json").write_text('"high"')
    conf = tmp_path / "profiles.conf"
    conf.write_text(
        textwrap.dedent(f"""\
        [*]
        job-json-overrides="/spec/template/spec/hostAliases":"{tmp_path}/kube-host-aliases","/spec/template/spec/tolerations":"tolerations.json"
        [@ops]
        job-json-overrides="/spec/template/spec/priorityClassName":"priority.json"
    """)
    )
    p = parse_profiles(conf)
    spec = apply_profile(build_spec(plumber, {}), p, "alice", [])
    pod = by_kind(render(spec))["Deployment"]["spec"]["template"]["spec"]
    assert pod["hostAliases"] == aliases
    assert pod["tolerations"][0]["key"] == "dedicated"
    assert "priorityClassName" not in pod
    validate_all(render(spec))
    ops = apply_profile(build_spec(plumber, {}), p, "alice", ["ops"])
    pod = by_kind(render(ops))["Deployment"]["spec"]["template"]["spec"]
    assert pod["priorityClassName"] == "high" and "hostAliases" not in pod  # later section wins


def test_platform_profiles_apply_overrides_follows_rfc_6901():
    doc = {"spec": {"a/b": 1, "m~n": 2, "list": [1, 2]}}
    apply_overrides(
        doc,
        [
            ("/spec/a~1b", 10),
            ("/spec/m~0n", 20),
            ("/spec/list/0", 0),
            ("/spec/list/-", 3),
            ("/spec/new/deep", {"x": 1}),
        ],
    )
    assert doc == {"spec": {"a/b": 10, "m~n": 20, "list": [0, 2, 3], "new": {"deep": {"x": 1}}}}
    with pytest.raises(ProfileError, match="no array element /spec/list/9"):
        apply_overrides(doc, [("/spec/list/9", 1)])
    with pytest.raises(ProfileError, match="not an object or array"):
        apply_overrides(doc, [("/spec/a~1b/x", 1)])


@pytest.mark.parametrize(
    "text, message",
    [
        ("max-cpus=2\n", "outside any section"),
        ("[*]\nmax-cpuz=2\n", "unknown setting 'max-cpuz'"),
        ("[*]\nmax-cpus=lots\n", "max-cpus=lots"),
        ("[*]\ncpu-request-ratio=1.5\n", "(0.0, 1.0]"),
        ("[*]\nallow-unknown-images=maybe\n", "must be 1 or 0"),
        ("[*]\njob-json-overrides=/spec:/file\n", "quoted pairs"),
        ('[*]\njob-json-overrides="/spec/x":"missing.json"\n', "cannot read"),
        ('[*]\njob-json-overrides="spec/x":"f.json"\n', "not an RFC 6901 JSON pointer"),
    ],
)
def test_platform_profiles_refuse_bad_files_with_line(text, message):
    with pytest.raises(ProfileError) as refused:
        parse_profiles_text(text, "p.conf", Path("/nonexistent"))
    assert message in str(refused.value)
    assert str(refused.value).startswith("p.conf:")
