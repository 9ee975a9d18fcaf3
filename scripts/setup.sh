#!/usr/bin/env bash
# Create .venv in the repo root and install Interlock with its dev and litellm extras. Idempotent: a re-run with
# an unchanged pyproject.toml does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
stamp=.venv/.installed
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && [ -x .venv/bin/interlock ]; then
  exit 0
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# pip's "is ignored: it is neither a file nor a directory" lines are about local mirrors this machine lists: noise.
.venv/bin/pip install -q --disable-pip-version-check -e ".[dev,litellm]" 2>&1 | { grep -v "is ignored: it is neither" || true; }
test "${PIPESTATUS[0]}" -eq 0
touch "$stamp"
echo "setup: .venv ready ($(.venv/bin/python --version))"
