"""``interlock router serve``: the intent router service (gateways with ``router.mode: service`` call it)."""

from __future__ import annotations

import click

from interlock.commands._service import run_service, service_options


@click.group()
def router() -> None:
    """The intent router service."""


@router.command()
@service_options(default_port=8300)
def serve(config_path: str | None, host: str, port: int, log_level: str) -> None:
    """Serve POST /route from the routers stored in the database (same database and Redis as the gateways)."""
    run_service(
        "services.router.app:create_app_from_env",
        config_path,
        host,
        port,
        log_level,
        lambda s: f"interlock router service on http://{host}:{port} (database {s.database.url.split('@')[-1]})",
    )
