#!/usr/bin/env bash
# The fast tests (-m "not slow") with nothing but the virtual environment and coreutils on the
# PATH: no R, no Rscript, no HAProxy. It passes only if the fast set truly needs none of them
# (tests/conftest.py also fails a fast test that starts a server or runs R or HAProxy).
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

bare=$(mktemp -d)
trap 'rm -rf "$bare"' EXIT
for tool in $(dpkg -L coreutils | grep -E '^/(usr/)?bin/[^/]+$'); do
  ln -sf "$tool" "$bare/"
done
for absent in R Rscript haproxy; do
  if PATH="$PWD/.venv/bin:$bare" command -v "$absent" >/dev/null; then
    echo "test-fast.sh: $absent is still on the bare PATH" >&2
    exit 1
  fi
done
env -u R_HOME PATH="$PWD/.venv/bin:$bare" .venv/bin/python -m pytest -q -m "not slow" \
  -p no:cacheprovider "$@"
