"""Engines, migrations and the readiness check (gateway/db/engine.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import make_url

from gateway.db import check, current_revision, head_revision, load_models, make_engine, migrate
from tests.gateway.db.support import record, stored
from tests.support.servers import refused_port

COLUMNS = {
    "id", "created_at", "key_id", "team_id", "model", "served_model", "upstream", "route", "stream",
    "status", "error_type", "prompt_tokens", "completion_tokens", "latency_ms", "ttft_ms", "tpot_ms",
    "cost_usd", "attempts", "client_request_id", "trace_id", "prompt_version", "details",
}  # fmt: skip


def test_when_never_migrated_then_current_revision_is_none(db_url):
    engine = make_engine(db_url)
    assert current_revision(engine) is None
    engine.dispose()


def test_when_migrated_then_request_records_has_every_column_and_index(db_url):
    migrate(db_url)
    engine = make_engine(db_url)
    inspector = sa.inspect(engine)
    assert {c["name"] for c in inspector.get_columns("request_records")} == COLUMNS
    assert inspector.get_pk_constraint("request_records")["constrained_columns"] == ["id"]
    indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes("request_records")}
    assert indexes == {
        "ix_request_records_created_at": ["created_at"],
        "ix_request_records_key_id_created_at": ["key_id", "created_at"],
        "ix_request_records_team_id_created_at": ["team_id", "created_at"],
        "ix_request_records_client_request_id": ["client_request_id"],
    }
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_when_migrated_twice_then_the_second_run_changes_nothing(db_url):
    migrate(db_url)
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO request_records VALUES "
                             "('r1', CURRENT_TIMESTAMP, NULL, NULL, 'm', NULL, NULL, 'chat', false, 200,"
                             " NULL, 0, 0, 1.0, NULL, NULL, 0.5, 1, NULL, NULL, NULL, NULL)"))  # fmt: skip
    migrate(db_url)
    assert set(stored(engine)) == {"r1"}
    assert current_revision(engine) == head_revision()
    engine.dispose()


def _schema_diff(engine) -> list:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, load_models())


def _table_of(diff) -> str | None:
    if isinstance(diff, list):  # column changes come grouped: [("modify_type", schema, table, ...)]
        return diff[0][2]
    obj = diff[1]
    return getattr(obj, "name", None) if diff[0].endswith("_table") else getattr(obj.table, "name", None)


def test_when_request_record_model_is_compared_with_the_migrated_schema_then_they_agree(engine):
    # The model changed without a migration (or the reverse) shows up here as a difference.
    assert [d for d in _schema_diff(engine) if _table_of(d) == "request_records"] == []


def test_when_every_table_module_is_compared_with_the_migrated_schema_then_they_agree(engine):
    """Guards all of ``MODEL_MODULES``: a table module without its migration fails here."""
    assert _schema_diff(engine) == []


def test_when_run_from_another_directory_then_migrations_are_found(sqlite_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path / "..")
    migrate(sqlite_url)
    engine = make_engine(sqlite_url)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_when_sqlite_then_the_journal_is_wal(sqlite_url):
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar_one() == "wal"
    engine.dispose()


@pytest.mark.postgres
def test_when_url_is_plain_postgresql_then_psycopg_3_serves_it(postgres_url):
    plain = make_url(postgres_url).set(drivername="postgresql").render_as_string(False)
    assert plain.startswith("postgresql://")
    migrate(plain)
    engine = make_engine(plain)
    assert engine.dialect.driver == "psycopg"
    assert check(engine)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_when_replicas_migrate_at_once_then_all_succeed(db_url):
    start = threading.Barrier(3)
    errors: list[BaseException] = []

    def run() -> None:
        start.wait()
        try:
            migrate(db_url)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    engine = make_engine(db_url)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_when_database_answers_then_check_is_true(engine):
    assert check(engine) is True


@pytest.mark.parametrize(
    "url",
    [
        pytest.param(f"postgresql://postgres@127.0.0.1:{refused_port()}/nothing", id="postgres-refused"),
        pytest.param("sqlite:////nonexistent-dir/interlock.db", id="sqlite-unopenable"),
    ],
)
def test_when_database_is_unreachable_then_check_is_false(url):
    engine = make_engine(url)
    assert check(engine) is False
    engine.dispose()


def test_when_a_record_is_inserted_then_created_at_reads_back_as_utc(engine):
    from datetime import UTC, datetime, timedelta, timezone

    from gateway.db import RequestRecord

    local = datetime(2025, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    with engine.begin() as conn:
        conn.execute(sa.insert(RequestRecord.__table__), [{**record("r1"), "created_at": local}])
    got = stored(engine)["r1"]["created_at"]
    assert got == datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
    assert got.tzinfo == UTC
