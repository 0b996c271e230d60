#!/usr/bin/env bash
# Install what plumbline needs on Debian bookworm (root), skipping what is already there:
# R with plumber's packages, HAProxy, wrk, a virtual environment in .venv, the project.
set -euo pipefail
cd "$(dirname "$0")/.."

# R and the R packages plumber.R files use (readr, base64enc, yaml: plumber's csv/tsv and yaml
# serializers and session cookies need them); runtime/Dockerfile installs exactly these.
R_PACKAGES="r-base-core r-cran-jsonlite r-cran-plumber r-cran-future r-cran-promises r-cran-readr r-cran-base64enc r-cran-yaml"
# Tools for the local cluster (HAProxy) and the benchmarks (wrk), an R package only
# plumber's example 07-mailgun uses (the compatibility suite serves it), and for the server's
# tests the R publishing client (rsconnect) and PostgreSQL (the tests start their own), and
# for the dashboard's tests a real browser (chromium, driven by Playwright) and Prometheus
# (the traffic charts read from it); not in the image.
TOOL_PACKAGES="haproxy wrk r-cran-htmltools r-cran-rsconnect postgresql-15 chromium prometheus"
PYTHON="${PYTHON:-python3}"

missing=""
for pkg in $R_PACKAGES $TOOL_PACKAGES; do
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
fi
stamp=.venv/.plumbline-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "install.sh: installing plumbline and its Python dependencies into .venv"
  .venv/bin/pip install -q -e ".[test]"
  touch "$stamp"
fi
# The worker's R code, byte-compiled for this R (runtime/r/bytecode.py); quick when up to date.
.venv/bin/python -m plumbline.runtime.r.bytecode >/dev/null
