"""The servers under test: Interlock's gateway and, optionally, a LiteLLM proxy, each in front of the emulator.

Both get their own settings file in the run's temporary folder, listen on 127.0.0.1 only, and are pinned to
the gateway core. Interlock runs with tracing on (OTLP/HTTP to the benchmark's sink) and request records on
(SQLite in the temporary folder, or a throwaway PostgreSQL database).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
import yaml
from _processes import Child, Processes, pinned, wait_http

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# Settings that would override the generated file if they leaked in from the caller's environment.
_OVERRIDING_ENV = ("DATABASE_URL", "REDIS_URL")


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _OVERRIDING_ENV and not k.startswith("INTERLOCK_")}
    env.update(extra)
    return env


def start_gateway(
    procs: Processes,
    name: str,
    *,
    cpu: int,
    port: int,
    upstream_url: str,
    model: str,
    database_url: str,
    otlp_endpoint: str,
    timeout: float = 60,
    extra: dict | None = None,
) -> Child:
    """``interlock serve --config ...`` with one worker, tracing and records on; returns once ``/health`` is 200."""
    settings = {
        "server": {"host": "127.0.0.1", "port": port},
        "models": [
            {"name": model, "deployments": [{"name": "emulator", "kind": "vllm", "url": upstream_url, "model": model}]}
        ],
        "database": {"url": database_url},
        "observability": {"otlp_endpoint": otlp_endpoint, "tracing": True, "metrics": True},
        **(extra or {}),
    }
    config = procs.log_dir / f"{name}.yaml"
    config.write_text(yaml.safe_dump(settings, sort_keys=False))
    cmd = pinned([str(BIN / "interlock"), "serve", "--config", str(config), "--log-level", "warning"], cpu)
    child = procs.start(name, cmd, env=_clean_env(), cwd=str(REPO))
    wait_http(child, "127.0.0.1", port, "/health", timeout)
    return child


def start_thin_proxy(procs: Processes, *, cpu: int, port: int, upstream_url: str, timeout: float = 30) -> Child:
    """The calibration proxy of ``_thin_proxy.py``, pinned like the gateway."""
    script = Path(__file__).with_name("_thin_proxy.py")
    cmd = pinned([sys.executable, str(script), "--upstream", upstream_url, "--port", str(port)], cpu)
    child = procs.start("thin_proxy", cmd, env=_clean_env())
    wait_http(child, "127.0.0.1", port, "/health", timeout)
    return child


def litellm_command(given: str | None) -> Path:
    """The ``litellm`` proxy command: ``given`` (one installed in a virtual environment of its own, so its
    pins do not move this one's packages), else the one beside this interpreter."""
    return Path(given) if given else BIN / "litellm"


def litellm_missing(command: Path) -> str | None:
    """Why the LiteLLM proxy cannot run, or ``None`` when it can."""
    if not command.exists():
        return f"no litellm command at {command}"
    if command.parent != BIN:
        return None  # its own environment: it brought its proxy extra with it
    if importlib.util.find_spec("litellm") is None:
        return "litellm is not installed"
    # The proxy's extra dependencies; litellm itself imports without them.
    for module in ("backoff", "apscheduler", "fastapi", "uvicorn"):
        if importlib.util.find_spec(module) is None:
            return f"litellm's proxy extra is missing ({module})"
    return None


def litellm_version(command: Path) -> str | None:
    """The version of the litellm package behind ``command`` (its own environment's python asks)."""
    python = command.parent / "python"
    out = subprocess.run(
        [str(python if python.exists() else sys.executable), "-c",
         "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
        timeout=30,
    )  # fmt: skip
    return out.stdout.strip() or None


def start_litellm(
    procs: Processes, command: Path, *, cpu: int, port: int, upstream_url: str, model: str, timeout: float = 180
) -> Child:
    """``litellm --config ... --num_workers 1``, the emulator as an ``openai/<model>`` deployment."""
    config = procs.log_dir / "litellm.yaml"
    settings = {
        "model_list": [
            {
                "model_name": model,
                "litellm_params": {"model": f"openai/{model}", "api_base": f"{upstream_url}/v1", "api_key": "none"},
            }
        ],
        "litellm_settings": {"telemetry": False},
        # Unauthenticated like the gateway under test (no keys on either side); LiteLLM refuses that unless told.
        "general_settings": {"dangerously_permit_weak_or_unset_master_key": True},
    }
    config.write_text(yaml.safe_dump(settings, sort_keys=False))
    cmd = [str(command), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--num_workers", "1"]
    # The price map ships with litellm; without this it tries to download it at startup.
    env = _clean_env(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_LOG="ERROR")
    child = procs.start("litellm", pinned(cmd, cpu), env=env, cwd=str(procs.log_dir))
    wait_http(child, "127.0.0.1", port, "/health/liveliness", timeout)
    return child


def postgres_reachable(url: str) -> str | None:
    """``None`` when ``url`` answers, else why not."""
    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    return None


@contextlib.contextmanager
def throwaway_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the PostgreSQL server of ``server_url``, dropped afterwards."""
    name = f"interlock_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield server_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn, contextlib.suppress(Exception):
            conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def count_records(database_url: str) -> int | None:
    """Rows in ``request_records``: proof that records were on and written."""
    with contextlib.suppress(Exception):
        engine = sa.create_engine(database_url)
        try:
            with engine.connect() as conn:
                return conn.execute(sa.text("SELECT count(*) FROM request_records")).scalar_one()
        finally:
            engine.dispose()
    return None


BENCH_KEY = "sk-il-bench-0123456789abcdef0123456789abcdef"


def limits_settings(redis_url: str, model: str) -> tuple[dict, dict[str, str]]:
    """Keys required, one key whose limits never bind but are all checked (RPM, TPM, concurrency, a daily
    budget), priced model so every request is settled with a cost: one admission script and one settlement
    per request, the case issue 3 asks to keep within the first issue's targets."""
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    limits = {"rpm": 100_000_000, "tpm": 10_000_000_000, "max_concurrency": 100_000, "budget_daily_usd": 1e9}
    extra = {
        "redis": {"url": redis_url},
        "access": {"require_keys": True, "keys": [{"name": "bench", "key": BENCH_KEY, "limits": limits}]},
    }
    return extra, {"Authorization": f"Bearer {BENCH_KEY}"}
