"""What the ``serve`` subcommands of the microservices share: their options, the settings check, the run."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import click


def service_options(default_port: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--config``, ``--host``, ``--port`` and ``--log-level``, as every service takes them."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        options = [
            click.option(
                "-c", "--config", "config_path", type=click.Path(exists=True, dir_okay=False), help="Settings YAML."
            ),
            click.option("--host", default="0.0.0.0", show_default=True),
            click.option("--port", type=int, default=default_port, show_default=True),
            click.option("--log-level", default="info", show_default=True),
        ]
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def run_service(
    app_factory: str, config_path: str | None, host: str, port: int, log_level: str, banner: Callable[[Any], str]
) -> None:
    """Check the settings here (a bad file is a CLI error, not a traceback in the server), then serve
    ``app_factory``, which re-reads them from ``INTERLOCK_CONFIG`` in the server's process."""
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
    click.echo(banner(settings))
    uvicorn.run(
        app_factory, factory=True, host=host, port=port, log_level=log_level, access_log=False, server_header=False
    )
