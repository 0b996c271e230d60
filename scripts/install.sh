#!/usr/bin/env bash
# Install what plumbline needs on Debian bookworm (root), skipping what is already there:
# R with plumber's packages, HAProxy, wrk, a virtual environment in .venv, the project.
set -euo pipefail
cd "$(dirname "$0")/.."

# R and the R packages plumber.R files use (readr, base64enc, yaml: plumber's csv/tsv and yaml
# serializers and session cookies need them); runtime/Dockerfile installs exactly these.
R_PACKAGES="r-base-core r-cran-jsonlite r-cran-plumber r-cran-future r-cran-promises r-cran-readr r-cran-base64enc r-cran-yaml"
# R's headers and the libraries it links (runtime/Dockerfile installs the same): rpy2 builds
# its compiled interface with them, and R packages that come only as source compile.
BUILD_PACKAGES="r-base-dev python3-dev"
# Tools for the local cluster (HAProxy) and the benchmarks (wrk), an R package only
# plumber's example 07-mailgun uses (the compatibility suite serves it), and for the server's
# tests the R publishing client (rsconnect) and PostgreSQL (the tests start their own), and
# for the dashboard's tests a real browser (chromium, driven by Playwright) and Prometheus
# (the traffic charts read from it); not in the image.
TOOL_PACKAGES="haproxy wrk r-cran-htmltools r-cran-rsconnect postgresql-15 chromium prometheus"
# Python: Debian's own python3 (3.11 on bookworm), the interpreter the image runs, unless
# PYTHON names another. Debian builds it with profile-guided and link-time optimisation; a
# python3 found first on PATH may lack both (pyenv's builds do), and the runtime runs Python
# for every request: with pyenv's 3.11 one machine served 15-25% fewer requests/s.
PYTHON_PACKAGES="python3 python3-venv"
PYTHON="${PYTHON:-/usr/bin/python3}"

missing=""
for pkg in $R_PACKAGES $BUILD_PACKAGES $PYTHON_PACKAGES $TOOL_PACKAGES; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  echo "install.sh: installing Debian packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
else
  # A .venv made earlier by another interpreter is kept; say so, once per run.
  made_with=$(.venv/bin/python -c 'import sys; print(sys._base_executable)')
  if [ "$(readlink -f "$made_with")" != "$(readlink -f "$(command -v "$PYTHON")")" ]; then
    echo "install.sh: note: .venv runs $made_with, not $PYTHON; remove .venv to remake it" >&2
  fi
fi
stamp=.venv/.plumbline-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "install.sh: installing plumbline and its Python dependencies into .venv"
  .venv/bin/pip install -q -e ".[test]"
  touch "$stamp"
fi
# rpy2's compiled interface (its API mode), as the image has it: calls into R go straight to
# R's C functions, not through libffi's dynamic calls. A wheel pip cached on a machine that
# lacked R's headers has only the ABI mode; rebuild it from source then.
if ! .venv/bin/python -c "import _rinterface_cffi_api" 2>/dev/null; then
  rpy2_version=$(.venv/bin/python -c "import importlib.metadata as m; print(m.version('rpy2'))")
  echo "install.sh: building rpy2 $rpy2_version's compiled interface"
  RPY2_CFFI_MODE=BOTH .venv/bin/pip install -q --no-cache-dir --no-binary rpy2 \
    --force-reinstall --no-deps "rpy2==$rpy2_version" ||
    echo "install.sh: warning: it did not build; rpy2 calls R through libffi (ABI mode)" >&2
fi
# The worker's R code, byte-compiled for this R (runtime/r/bytecode.py); quick when up to date.
.venv/bin/python -m plumbline.runtime.r.bytecode >/dev/null
