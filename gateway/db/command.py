"""``interlock migrate``: bring the database to the newest schema."""

from __future__ import annotations

import click


@click.command()
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False), help="Settings YAML file.")
@click.option("--database-url", help="Overrides database.url from the settings (and DATABASE_URL).")
def migrate(config_path: str | None, database_url: str | None) -> None:
    """Create or upgrade the tables in the configured database. Safe to run again, and from several
    replicas at once (PostgreSQL serialises them with an advisory lock)."""
    from gateway.db.engine import current_revision, make_engine
    from gateway.db.engine import database_url as parse_url
    from gateway.db.engine import migrate as run_migrations
    from gateway.errors import ConfigError
    from interlock.settings import load_settings

    if database_url is None:
        try:
            database_url = load_settings(config_path).database.url
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from exc
    shown = parse_url(database_url).render_as_string(hide_password=True)
    run_migrations(database_url)
    engine = make_engine(database_url)
    try:
        click.echo(f"{shown}: schema at revision {current_revision(engine)}")
    finally:
        engine.dispose()
