"""Access-control fixtures: migrated databases (SQLite and PostgreSQL) and a small model list.

PostgreSQL gets one migrated database per test module, emptied before each test: creating and
dropping a database per test would cost a second each.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway.config import ModelConfig
from gateway.db import make_engine, migrate
from tests.support.servers import temporary_database

MODELS = [
    ModelConfig(name="small", deployments=[{"url": "http://127.0.0.1:9/small"}]),
    ModelConfig(name="large", deployments=[{"url": "http://127.0.0.1:9/large"}]),
    ModelConfig(name="embed", deployments=[{"url": "http://127.0.0.1:9/embed"}]),
]
ACCESS_TABLES = "api_keys, teams, model_overrides"


@pytest.fixture(scope="module")
def access_pg_db(postgres_server_url: str) -> Iterator[str]:
    """A migrated PostgreSQL database shared by one test module."""
    with temporary_database(postgres_server_url) as url:
        migrate(url)
        yield url


def _empty(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {ACCESS_TABLES}"))
        conn.execute(sa.text("UPDATE config_version SET version = 0"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    """A migrated, empty database of each kind."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_db")
    url = request.getfixturevalue("access_pg_db")
    _empty(url)
    return url


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("access-template") / "interlock.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_db(_sqlite_template: Path, tmp_path: Path) -> str:
    """A migrated SQLite database (a copy of one migrated once per session)."""
    path = tmp_path / "interlock.db"
    shutil.copyfile(_sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    e = make_engine(db_url)
    yield e
    e.dispose()
