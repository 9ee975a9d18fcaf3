"""``interlock guardrails serve``: the guardrails service (gateways with ``guardrails.mode: service`` call it)."""

from __future__ import annotations

import click

from interlock.commands._service import run_service, service_options


@click.group()
def guardrails() -> None:
    """The guardrails service."""


@guardrails.command()
@service_options(default_port=8400)
def serve(config_path: str | None, host: str, port: int, log_level: str) -> None:
    """Serve POST /scan with the guards the settings' ``guardrails`` section configures (models load at start)."""
    run_service(
        "services.guardrails.app:create_app_from_env",
        config_path,
        host,
        port,
        log_level,
        lambda _: f"interlock guardrails service on http://{host}:{port}",
    )
