#!/usr/bin/env bash
# Create .venv in the repo root and install Interlock with its dev and litellm extras. Idempotent: a re-run with
# an unchanged pyproject.toml does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# The console's charts: uPlot from npm, into the package's static folder (served by the gateway at /ui; nothing
# is fetched from a CDN at run time). Before the stamp check: the folder is not in git, a fresh clone needs it.
vendor=console/static/vendor
if [ ! -f "$vendor/uPlot.iife.min.js" ]; then
  if command -v npm >/dev/null 2>&1; then
    tmp=$(mktemp -d)
    if (cd "$tmp" && npm install --no-audit --no-fund --silent uplot@1.6.32 >/dev/null); then
      mkdir -p "$vendor"
      cp "$tmp"/node_modules/uplot/dist/uPlot.iife.min.js "$tmp"/node_modules/uplot/dist/uPlot.min.css \
        "$tmp"/node_modules/uplot/LICENSE "$vendor"/
    else
      echo "setup: npm could not install uplot; the console shows tables instead of charts"
    fi
    rm -rf "$tmp"
  else
    echo "setup: npm not found (apt-get install npm); the console shows tables instead of charts"
  fi
fi
stamp=.venv/.installed
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && [ -x .venv/bin/interlock ]; then
  exit 0
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# pip's "is ignored: it is neither a file nor a directory" lines are about local mirrors this machine lists: noise.
.venv/bin/pip install -q --disable-pip-version-check -e ".[dev,litellm,ai,pgvector]" 2>&1 | { grep -v "is ignored: it is neither" || true; }
test "${PIPESTATUS[0]}" -eq 0
# The console's browser tests drive Debian's chromium (Playwright's own browser download cannot work here).
if ! command -v chromium >/dev/null 2>&1; then
  echo "setup: installing Debian's chromium for the browser tests"
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ||
      echo "setup: could not install chromium; the console's browser tests will be skipped"
  else
    echo "setup: not root; install chromium yourself (apt-get install chromium) to run the browser tests"
  fi
fi
touch "$stamp"
echo "setup: .venv ready ($(.venv/bin/python --version))"
