"""``interlock serve``: the gateway alone, from a settings file."""

from __future__ import annotations

import logging

import click


@click.command()
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False),
    help="Settings YAML file (see config/interlock.example.yaml).",
)
@click.option("--host", default=None, help="Overrides server.host.")
@click.option("--port", type=int, default=None, help="Overrides server.port.")
@click.option(
    "--workers",
    type=int,
    default=1,
    show_default=True,
    help="Gateway processes sharing the port (use Redis so limits stay global).",
)
@click.option("--log-level", default="info", show_default=True)
def serve(config_path: str | None, host: str | None, port: int | None, workers: int, log_level: str) -> None:
    """Start the gateway (model API on /v1, admin API on /admin, /health, /ready, /metrics)."""

    from gateway.errors import ConfigError
    from interlock.settings import load_settings

    try:
        settings = load_settings(config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    host = host or settings.server.host
    port = port or settings.server.port
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    click.echo(
        f"interlock gateway on http://{host}:{port}  ({len(settings.models)} models, "
        f"database {settings.database.url.split('@')[-1]})"
    )
    run_gateway(config_path, host, port, workers, log_level)


def run_gateway(config_path: str | None, host: str, port: int, workers: int = 1, log_level: str = "info") -> None:
    import os

    import uvicorn

    if config_path:
        # Workers re-read the file in their own process (the factory below); the path travels by env.
        os.environ["INTERLOCK_CONFIG"] = os.path.abspath(config_path)
    uvicorn.run(
        "services.gateway.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        log_level=log_level,
        access_log=False,  # every request is already a record in the database; a log line each costs throughput
        proxy_headers=False,  # nothing here reads the client address: skip a middleware layer per request
        server_header=False,
        timeout_graceful_shutdown=30,
    )
