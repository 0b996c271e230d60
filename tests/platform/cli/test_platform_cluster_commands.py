"""The cluster commands as a user runs them, against KMock's Kubernetes emulator on loopback."""

from __future__ import annotations

import pytest

from platform_cluster_harness import PlayedControllers
from plumbline.cli import main
from plumbline.platform.kube.backend import KubernetesBackend

PLUMBER_R = """\
#* @serializer text
#* @get /parity
function(int) {
  if (as.integer(int) %% 2 == 0) "even" else "odd"
}
"""
NS = "shop"
pytestmark = pytest.mark.slow  # runs Rscript (the syntax check) and an API server


@pytest.fixture
def kubeconfig(api_server, tmp_path):
    # The context's namespace is "default": the commands below select theirs with -n.
    return str(api_server.kubeconfig(tmp_path))


@pytest.fixture
def plumber_file(tmp_path):
    app = tmp_path / "parity"
    app.mkdir()
    path = app / "plumber.R"
    path.write_text(PLUMBER_R)
    return path


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


def test_the_commands_deploy_inspect_change_and_delete_an_app(
    api_server, kubeconfig, plumber_file, capsys
):
    target = ["-n", NS, "--kubeconfig", kubeconfig]
    with PlayedControllers(api_server.url, NS, "parity"):
        code, out, _ = run(
            capsys,
            "deploy",
            str(plumber_file),
            "--name",
            "parity",
            "--image",
            "registry.example/parity:v1",
            "--ingress-host",
            "parity.example.com",
            *target,
        )
        assert code == 0
        assert "deployment/parity created" in out
        assert out[-1].startswith("deploy of parity succeeded")
        assert out[out.index("endpoints:") + 1] == "  GET http://parity.example.com/parity"

        code, out, _ = run(capsys, "status", "parity", *target)
        assert code == 0
        assert out[0] == (
            "parity (namespace shop), revision 1: 2/2 updated, 2/2 ready, 2/2 available"
        )
        assert "  GET http://parity.example.com/parity" in out
        assert out[-1] == "parity is healthy"
        listed = KubernetesBackend(kubeconfig=kubeconfig, namespace=NS).list_apps()
        assert [(a.name, a.namespace, a.backend, a.healthy) for a in listed] == [
            ("parity", NS, "kubernetes", True)
        ]

        code, out, _ = run(capsys, "scale", "parity", "3", *target)
        assert code == 0 and out[0] == "deployment/parity scaled to 3"
        assert out[-1].startswith("rollout of parity complete (revision 1): 3/3")

        code, out, _ = run(capsys, "restart", "parity", *target)
        assert code == 0 and out[-1].startswith("rollout of parity complete (revision 2)")

        code, out, _ = run(capsys, "rollback", "parity", "--to-revision", "1", *target)
        assert code == 0 and out[-1].startswith("rollout of parity complete (revision 3)")
        template = api_server.get(f"/apis/apps/v1/namespaces/{NS}/deployments/parity")["spec"][
            "template"
        ]
        assert "kubectl.kubernetes.io/restartedAt" not in template["metadata"]["annotations"]

        code, out, err = run(capsys, "logs", "parity", "--tail", "5", *target)
        assert code == 0 and len(out) == 6 and all(line.startswith("[parity-") for line in out)
        assert "6 log lines from the replicas of parity" in err
        log_request = [r for r in api_server.requests() if r.url.path.endswith("/log")][-1]
        assert log_request.params == {"container": "api", "tailLines": "5"}

    code, out, _ = run(capsys, "delete", "parity", *target)
    assert code == 0 and out[-1] == "deleted 6 objects of parity"
    code, out, _ = run(capsys, "delete", "parity", *target)
    assert code == 0 and out[-1] == "nothing of parity to delete in namespace shop"


def test_deploy_refuses_a_broken_plumber_file_before_touching_the_cluster(
    api_server, kubeconfig, plumber_file, capsys
):
    plumber_file.write_text('#* @get /parity\nfunction(int) {\n  if (int > 1 "odd"\n}\n')
    code, out, err = run(capsys, "deploy", str(plumber_file), "-n", NS, "--kubeconfig", kubeconfig)
    assert code == 2
    assert f"refused: {plumber_file}:3:" in err and "unexpected string constant" in err
    assert api_server.requests() == []


def test_errors_end_in_a_verdict_and_a_failure_status(api_server, kubeconfig, tmp_path, capsys):
    code, _, err = run(capsys, "status", "nope", "-n", NS, "--kubeconfig", kubeconfig)
    assert code == 1 and err.strip() == "plumbline status: no deployment nope in namespace shop"

    code, _, err = run(capsys, "restart", "nope", "--kubeconfig", str(tmp_path / "missing"))
    assert code == 1 and err.startswith(
        "plumbline restart: cannot connect: no usable Kubernetes configuration"
    )

    closed = tmp_path / "closed"
    closed.mkdir()
    config = closed / "kubeconfig"
    config.write_text(open(kubeconfig).read().replace(api_server.url, "http://127.0.0.1:9"))
    code, _, err = run(capsys, "scale", "parity", "3", "--kubeconfig", str(config))
    assert code == 1
    assert err.startswith("plumbline scale: cannot reach the Kubernetes API at http://127.0.0.1:9")

    # Only the local backend can guess which app is meant.
    before = len(api_server.requests())
    code, _, err = run(capsys, "scale", "3", "--kubeconfig", kubeconfig)
    assert code == 2 and "the app's name is required" in err
    assert len(api_server.requests()) == before


@pytest.mark.parametrize("switch", [["--local"], ["--context", "local"]])
def test_local_runs_the_command_against_the_local_backend(api_server, kubeconfig, capsys, switch):
    code, _, err = run(capsys, "status", "ghost-app", "--kubeconfig", kubeconfig, *switch)
    assert code != 0 and "no local cluster named 'ghost-app' is running" in err
    assert api_server.requests() == []


def test_status_of_an_unhealthy_app_exits_1_and_says_why(
    api_server, kubeconfig, plumber_file, capsys
):
    target = ["-n", NS, "--kubeconfig", kubeconfig]
    with PlayedControllers(api_server.url, NS, "parity"):
        code, _, _ = run(
            capsys,
            "deploy",
            str(plumber_file),
            "--name",
            "parity",
            "--image",
            "registry.example/parity:stuck",
            "--rollout-timeout",
            "2",
            *target,
        )
        assert code == 1  # a first deploy that never became ready: nothing to roll back to
        code, out, _ = run(capsys, "status", "parity", *target)
    assert code == 1, out
    assert out[0] == "parity (namespace shop), revision 1: 1/2 updated, 0/2 ready, 0/2 available"
    assert out[-1].startswith("parity is not ready: progress deadline exceeded: "), out


def test_scale_warns_when_an_autoscaler_manages_the_app(
    api_server, kubeconfig, plumber_file, capsys
):
    target = ["-n", NS, "--kubeconfig", kubeconfig]
    with PlayedControllers(api_server.url, NS, "parity"):
        code, out, _ = run(
            capsys,
            "deploy",
            str(plumber_file),
            "--name",
            "parity",
            "--image",
            "registry.example/parity:v1",
            "--hpa-max",
            "4",
            *target,
        )
        assert code == 0 and "horizontalpodautoscaler/parity created" in out, out
        code, out, _ = run(capsys, "scale", "parity", "3", *target)
    assert code == 0, out
    assert out[0] == (
        "warning: an autoscaler manages parity; it will change the replica count again"
    ), out
    assert out[1] == "deployment/parity scaled to 3"
    scaled = [r for r in api_server.client_requests() if r.url.path.endswith("/parity/scale")]
    assert [(r.method, r.data) for r in scaled] == [("PATCH", {"spec": {"replicas": 3}})]

    plumber_file.parent.joinpath("other").mkdir()
    other = plumber_file.parent / "other" / "plumber.R"
    other.write_text(PLUMBER_R)
    with PlayedControllers(api_server.url, NS, "other"):
        assert (
            run(
                capsys,
                "deploy",
                str(other),
                "--name",
                "other",
                "--image",
                "registry.example/parity:v1",
                *target,
            )[0]
            == 0
        )
        code, out, _ = run(capsys, "scale", "other", "3", *target)
    assert code == 0 and not any(line.startswith("warning:") for line in out), out
