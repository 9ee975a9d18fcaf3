"""``interlock router serve``: the intent router service (gateways with ``router.mode: service`` call it)."""

from __future__ import annotations

import logging
import os

import click


@click.group()
def router() -> None:
    """The intent router service."""


@router.command()
@click.option("-c", "--config", "config_path", type=click.Path(exists=True, dir_okay=False), help="Settings YAML.")
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", type=int, default=8300, show_default=True)
@click.option("--log-level", default="info", show_default=True)
def serve(config_path: str | None, host: str, port: int, log_level: str) -> None:
    """Serve POST /route from the routers stored in the database (same database and Redis as the gateways)."""
    import uvicorn

    from gateway.errors import ConfigError
    from interlock.settings import load_settings

    try:
        settings = load_settings(config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    if config_path:
        os.environ["INTERLOCK_CONFIG"] = os.path.abspath(config_path)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    click.echo(f"interlock router service on http://{host}:{port} (database {settings.database.url.split('@')[-1]})")
    uvicorn.run(
        "services.router.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        server_header=False,
    )
