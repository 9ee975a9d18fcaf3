"""Fixtures for the SQL store: every test runs against SQLite and a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gateway.db import make_engine, migrate
from tests.gateway.db.support import rename_table
from tests.support.servers import temporary_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """An empty, never migrated database, SQLite file or PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture(scope="session")
def migrated_postgres_url(postgres_server_url: str) -> Iterator[str]:
    """One migrated PostgreSQL database shared by the tests that only read and write rows:
    creating a database per test costs a few hundred milliseconds each."""
    with temporary_database(postgres_server_url) as url:
        migrate(url)
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """An engine on a migrated database with no request records."""
    if request.param == "sqlite":
        url = request.getfixturevalue("sqlite_url")
        migrate(url)
    else:
        url = request.getfixturevalue("migrated_postgres_url")
    eng = make_engine(url)
    if request.param == "postgres":
        # Undo what an earlier test may have left: a table moved away, rows.
        if not sa.inspect(eng).has_table("request_records"):
            rename_table(eng, "request_records_away", "request_records")
        with eng.begin() as conn:
            conn.execute(sa.text("TRUNCATE request_records"))
    yield eng
    eng.dispose()
