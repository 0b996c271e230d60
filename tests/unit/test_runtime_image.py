"""runtime/Dockerfile builds the pod image with the same install as the README's command.

No Docker engine runs here, so these tests read the Dockerfile and check it against the
install script and the project, which is what would make a build diverge.
"""

import re
import shlex
from support import REPO as ROOT

DOCKERFILE = (ROOT / "runtime/Dockerfile").read_text()
INSTALL = (ROOT / "scripts/install.sh").read_text()


def _instructions():
    text = re.sub(r"\\\n", " ", DOCKERFILE)
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            yield word.upper(), rest.strip()


def _shell_var(text, name):
    m = re.search(rf'^{name}="([^"]*)"', text, re.M)
    assert m, f"{name} not set"
    return m.group(1).split()


def test_r_packages_match_the_install_script():
    args = {
        rest.split("=", 1)[0]: rest.split("=", 1)[1].strip('"')
        for word, rest in _instructions()
        if word == "ARG" and "=" in rest
    }
    # R, what builds rpy2's interface, and the Python that runs plumbline
    for name in ("R_PACKAGES", "BUILD_PACKAGES", "PYTHON_PACKAGES"):
        assert args[name].split() == _shell_var(INSTALL, name)
    run = " ".join(rest for word, rest in _instructions() if word == "RUN")
    assert "${R_PACKAGES} ${BUILD_PACKAGES} ${PYTHON_PACKAGES}" in run and "apt-get install" in run
    # ... and the same interpreter: Debian's python3 makes the image's venv and, unless
    # PYTHON says otherwise, the developer's .venv (not whichever python3 is first on PATH)
    assert "python3 -m venv /opt/plumbline" in run
    assert _shell_var(INSTALL, "PYTHON") == ["${PYTHON:-/usr/bin/python3}"]


def test_base_image_is_pinned():
    base = next(rest for word, rest in _instructions() if word == "FROM")
    assert "@sha256:" in base or re.search(r":[a-z]+-\d{8}", base), base


def test_python_install_is_the_project_itself():
    run = " ".join(rest for word, rest in _instructions() if word == "RUN")
    assert "pip install" in run and "/src" in run
    copied = [shlex.split(rest)[:-1] for word, rest in _instructions() if word == "COPY"]
    sources = [s for group in copied for s in group if not s.startswith("--")]
    for src in sources:
        if "$" not in src:
            assert (ROOT / src).exists(), src
    assert "pyproject.toml" in sources


def test_runs_plumbline_serve_as_non_root_on_the_exposed_port():
    ins = list(_instructions())
    user = [rest for word, rest in ins if word == "USER"][-1]
    assert not user.startswith(("0", "root"))
    assert [rest for word, rest in ins if word == "EXPOSE"] == ["8000"]
    entry = [rest for word, rest in ins if word == "ENTRYPOINT"][-1]
    cmd = [rest for word, rest in ins if word == "CMD"][-1]
    assert entry == '["plumbline", "serve"]'
    assert '"/app/plumber.R"' in cmd and '"8000"' in cmd and '"0.0.0.0"' in cmd
