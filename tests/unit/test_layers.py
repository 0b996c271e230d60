"""What import-linter (pyproject.toml) cannot see: `plumbline.cli` sits on top of everything,
so no module of runtime/ or platform/ imports it."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from support import REPO

MODULES = sorted([*(REPO / "runtime").rglob("*.py"), *(REPO / "platform").rglob("*.py")])


def _imports(path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(REPO)))
def test_nothing_below_the_cli_imports_it(path):
    assert not {
        name
        for name in _imports(path)
        if name == "plumbline.cli" or name.startswith("plumbline.cli.")
    }


def test_the_folders_show_the_layers():
    assert not (REPO / "runtime" / "__init__.py").exists()
    assert not (REPO / "platform" / "__init__.py").exists()
    for layer in ("spec", "kube", "local", "cli"):
        assert (REPO / "platform" / layer / "__init__.py").is_file()
    assert not [p.name for p in (REPO / "platform").glob("*.py") if p.name != "backend.py"]
    # runtime/: the front door, the pool and the R side each in their folder; beside them only
    # the commands, the server that wires them, its settings and what all of them share.
    for layer in ("front", "pool", "r"):
        assert (REPO / "runtime" / layer / "__init__.py").is_file()
    top = {"commands.py", "prepare.py", "server.py", "settings.py", "protocol.py", "logs.py"}
    assert {p.name for p in (REPO / "runtime").glob("*.py")} == top
    assert not list((REPO / "runtime").glob("*.R"))  # R code lives with the R side


SHARED = sorted(
    [*(REPO / "plumbline" / "packages").glob("*.py"), REPO / "plumbline" / "archive.py"]
)


@pytest.mark.parametrize("path", SHARED, ids=lambda p: str(p.relative_to(REPO)))
def test_what_runtime_and_platform_share_imports_neither(path):
    """plumbline.packages and plumbline.archive serve both halves, so they sit below both."""
    assert not {
        name
        for name in _imports(path)
        if name.startswith(("plumbline.runtime", "plumbline.platform", "plumbline.cli"))
    }


def test_the_app_spec_reads_requirements_but_never_installs():
    """The spec stays pure data: it may read what a manifest.json names, never run R."""
    for path in (REPO / "platform" / "spec").rglob("*.py"):
        assert not {n for n in _imports(path) if n.startswith("plumbline.packages.library")}, path


@pytest.mark.parametrize("module", ["plumbline.runtime.r.zygote", "plumbline.runtime.r.worker"])
def test_an_r_process_imports_only_what_it_uses(module):
    """Every import is on the way to a ready worker: the R side loads neither the pool's
    asyncio nor the annotation parser (together ~50 ms of each start)."""
    code = f"import sys, {module}; print(' '.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(done.stdout.split())
    assert module in loaded
    assert not loaded & {"asyncio", "plumbline.annotations", "plumbline.routes", "rpy2"}
