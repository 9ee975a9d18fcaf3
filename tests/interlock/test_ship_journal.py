"""``interlock ship-journal``: the records of a gateway killed with its recorder reach the database without a
gateway being started again."""

from __future__ import annotations

import asyncio

import yaml
from click.testing import CliRunner

from gateway.db import make_engine, migrate
from interlock.cli import main
from tests.gateway.db.support import stored
from tests.gateway.db.test_writer_journal import run_and_kill, segments


def test_when_a_journal_was_left_by_a_killed_gateway_then_ship_journal_writes_it_and_empties_it(tmp_path, sqlite_url):
    journal = tmp_path / "journal"
    migrate(sqlite_url)
    engine = make_engine(sqlite_url)
    asyncio.run(run_and_kill(engine, journal, 7))  # 7 records in the journal, none written: flushes were hours away
    assert stored(engine) == {} and segments(journal)
    config = tmp_path / "interlock.yaml"
    config.write_text(yaml.safe_dump({"database": {"url": sqlite_url, "journal_dir": str(journal)}}))

    result = CliRunner().invoke(main, ["ship-journal", "--config", str(config)])

    assert result.exit_code == 0, result.output
    assert "7 records shipped" in result.output
    assert len(stored(engine)) == 7 and segments(journal) == []
    again = CliRunner().invoke(main, ["ship-journal", "--config", str(config)])
    assert again.exit_code == 0 and "0 records shipped" in again.output
    engine.dispose()


def test_when_the_journal_folder_does_not_exist_then_it_says_so(tmp_path, sqlite_url):
    result = CliRunner().invoke(main, ["ship-journal", "--journal-dir", str(tmp_path / "nope")])
    assert result.exit_code != 0 and "no journal folder" in result.output
