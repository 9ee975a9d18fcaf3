"""``interlock feedback export``: preference pairs (JSONL) from edited outputs and from regenerations that were
then rated up. Reads the database directly (``--database-url``, default the settings' ``database.url``)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

import click
import orjson


@click.group()
def feedback() -> None:
    """User feedback: export preference data."""


@feedback.command("export")
@click.option("--config", "config_path", help="Settings YAML (for database.url).")
@click.option("--database-url", help="SQLAlchemy URL of the gateway's database (overrides --config).")
@click.option("--out", "out_path", default="-", show_default=True, help="Output file; - for stdout.")
@click.option("--days", type=float, help="Only feedback of the last N days.")
def export(config_path: str | None, database_url: str | None, out_path: str, days: float | None) -> None:
    """Write (prompt, chosen, rejected) pairs, one JSON object per line."""
    from gateway.db import make_engine
    from gateway.feedback.export import preference_pairs

    if database_url is None:
        from interlock.settings import load_settings

        database_url = load_settings(config_path).database.url
    since = datetime.now(UTC) - timedelta(days=days) if days else None
    engine = make_engine(database_url)
    out = sys.stdout.buffer if out_path == "-" else open(out_path, "wb")  # noqa: SIM115 - closed below
    n = 0
    try:
        for pair in preference_pairs(engine, since):
            out.write(orjson.dumps(pair, option=orjson.OPT_APPEND_NEWLINE))
            n += 1
    finally:
        if out is not sys.stdout.buffer:
            out.close()
        engine.dispose()
    click.echo(f"{n} preference pairs written", err=True)
