"""``interlock ship-journal``: write to the database the records that gateways which died left in a journal folder.

A gateway process appends each record to its journal and its recorder ships it; if both are killed and never
restarted, the segments wait on disk under a lock nobody holds. Any gateway started on the folder replays them;
this command does the same once, without serving, and leaves alone the journals of gateways that are running
(their lock is held), so it is safe to run beside them, from cron or by hand.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import click


@click.command("ship-journal")
@click.option("--config", "-c", "config_path", envvar="INTERLOCK_CONFIG", default=None, help="The gateways' YAML.")
@click.option(
    "--journal-dir",
    default=None,
    help="The folder to ship (default: the config's database.journal_dir, else the database's default folder).",
)
def ship_journal(config_path: str | None, journal_dir: str | None) -> None:
    """Write what stopped gateways left in their journal to the database, then exit."""
    from gateway.core import default_journal_dir
    from gateway.db import make_engine, migrate
    from gateway.db._replay import replay_orphans
    from gateway.recorder.rollups import inserter_for
    from interlock.settings import load_settings

    settings = load_settings(config_path)
    db = settings.database
    directory = Path(journal_dir or db.journal_dir or default_journal_dir(db.url))
    if not directory.is_dir():
        raise click.ClickException(f"no journal folder at {directory}")
    migrate(db.url)
    engine = make_engine(db.url)
    inserter = inserter_for(engine, settings.rollups.model_dump() if settings.rollups.enabled else None)
    failed: list[str] = []

    async def write(records: list[tuple[Any, float]]) -> bool:
        for start in range(0, len(records), db.batch_size):
            batch = [(record, at, None) for record, at in records[start : start + db.batch_size]]
            outcome = await asyncio.to_thread(inserter.write, batch)
            failed.extend(outcome.rejected)
            if outcome.error is not None:
                return False
        return True

    try:
        # Our own prefix only has to differ from every writer's: nothing of ours is in the folder.
        done, rows = asyncio.run(replay_orphans(directory, f"ship-journal-{os.getpid()}", write))
    finally:
        engine.dispose()
    click.echo(f"{rows} records shipped from {directory}" + (f", {len(failed)} rejected" if failed else ""))
    if not done:
        raise click.ClickException("the database failed before the journal was shipped: what is left stays, run again")
