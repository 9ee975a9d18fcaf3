"""``migrate`` command (gateway/db/command.py)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import make_url

from gateway.db import current_revision, head_revision, make_engine
from gateway.db.command import migrate


@pytest.fixture(autouse=True)
def _no_database_env(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("INTERLOCK_DATABASE__URL", raising=False)


def _revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        return current_revision(engine)
    finally:
        engine.dispose()


def test_when_run_twice_with_a_url_then_the_schema_is_at_head_both_times(db_url):
    for _ in range(2):
        result = CliRunner().invoke(migrate, ["--database-url", db_url])
        assert result.exit_code == 0, result.output
        assert f"schema at revision {head_revision()}" in result.output
    assert _revision(db_url) == head_revision()


def test_when_given_a_config_file_then_its_database_is_migrated(sqlite_url, tmp_path):
    config = tmp_path / "interlock.yaml"
    config.write_text(f"database:\n  url: {sqlite_url}\n")
    result = CliRunner().invoke(migrate, ["--config", str(config)])
    assert result.exit_code == 0, result.output
    assert _revision(sqlite_url) == head_revision()


def test_when_database_url_is_in_the_environment_then_it_is_used(sqlite_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    result = CliRunner().invoke(migrate, [])
    assert result.exit_code == 0, result.output
    assert _revision(sqlite_url) == head_revision()


def test_when_the_config_file_is_invalid_then_the_command_fails_naming_the_key(tmp_path):
    config = tmp_path / "interlock.yaml"
    config.write_text("database:\n  adress: nowhere\n")
    result = CliRunner().invoke(migrate, ["--config", str(config)])
    assert result.exit_code != 0
    assert "database.adress" in result.output


@pytest.mark.postgres
def test_when_the_url_has_a_password_then_the_output_hides_it(postgres_url):
    url = make_url(postgres_url)
    if url.password is None:  # trust authentication ignores it
        url = url.set(password="s3cret-pw")
    result = CliRunner().invoke(migrate, ["--database-url", url.render_as_string(False)])
    assert result.exit_code == 0, result.output
    assert url.password not in result.output and "***" in result.output
