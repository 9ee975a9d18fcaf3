"""``interlock guardrails serve``: the guardrails service (gateways with ``guardrails.mode: service`` call it)."""

from __future__ import annotations

import logging
import os

import click


@click.group()
def guardrails() -> None:
    """The guardrails service."""


@guardrails.command()
@click.option("-c", "--config", "config_path", type=click.Path(exists=True, dir_okay=False), help="Settings YAML.")
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", type=int, default=8400, show_default=True)
@click.option("--log-level", default="info", show_default=True)
def serve(config_path: str | None, host: str, port: int, log_level: str) -> None:
    """Serve POST /scan with the guards the settings' ``guardrails`` section configures (models load at start)."""
    import uvicorn

    from gateway.errors import ConfigError
    from interlock.settings import load_settings

    try:
        load_settings(config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    if config_path:
        os.environ["INTERLOCK_CONFIG"] = os.path.abspath(config_path)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    click.echo(f"interlock guardrails service on http://{host}:{port}")
    uvicorn.run(
        "services.guardrails.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        server_header=False,
    )
