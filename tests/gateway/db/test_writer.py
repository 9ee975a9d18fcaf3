"""Batched request-record writes (gateway/db/writer.py), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from gateway.db import RecordWriter, RequestRecord, make_engine, migrate
from tests.gateway.db.support import eventually, record, rename_table, stored

FOREVER = 3600.0  # a flush interval that never elapses during a test


async def test_when_dicts_and_records_are_submitted_then_every_column_reads_back(engine):
    writer = RecordWriter(engine, flush_interval=FOREVER)
    full = {
        "id": "req-full", "created_at": datetime(2025, 1, 2, 5, 0, tzinfo=timezone(timedelta(hours=3))),
        "key_id": "key-1", "team_id": "team-1", "model": "llama", "served_model": "llama-backup",
        "upstream": "gpu-2", "route": "completions", "stream": True, "status": 503,
        "error_type": "upstream_error", "prompt_tokens": 12, "completion_tokens": 34, "latency_ms": 56.5,
        "ttft_ms": 7.25, "tpot_ms": 1.5, "cost_usd": 0.0125, "attempts": 3, "client_request_id": "client-7",
        "trace_id": "0af7651916cd43dd8448eb211c80319c", "prompt_version": "5d41402abc4b",
        "details": {"config": "c1", "params": {"temperature": 0.5}, "guards": ["pii"]},
    }  # fmt: skip
    writer.submit(full)
    writer.submit(record("req-minimal"))
    writer.submit(RequestRecord(id="req-object", model="m", route="embeddings", status=200, latency_ms=2))
    before = datetime.now(UTC)
    await writer.close()

    rows = stored(engine)
    assert rows["req-full"] == {**full, "created_at": datetime(2025, 1, 2, 2, 0, tzinfo=UTC)}
    minimal = rows["req-minimal"]
    assert (minimal["stream"], minimal["prompt_tokens"], minimal["cost_usd"], minimal["attempts"]) == (
        False, 0, 0.0, 0,
    )  # fmt: skip
    assert minimal["key_id"] is None and minimal["ttft_ms"] is None
    # created_at defaults to the moment of submit, in UTC
    assert minimal["created_at"].tzinfo == UTC
    assert before - timedelta(seconds=5) < minimal["created_at"] <= before
    assert rows["req-object"]["route"] == "embeddings"
    assert writer.written == 3 and writer.pending == 0


async def test_when_many_records_are_submitted_then_they_go_in_a_few_batched_inserts(engine):
    inserts = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def count(conn, cursor, statement, *args):
        if statement.startswith("INSERT INTO request_records"):
            inserts.append(statement)

    writer = RecordWriter(engine, batch_size=500, flush_interval=FOREVER)
    for i in range(1200):
        writer.submit(record(f"r{i}"))
    assert writer.pending == 1200
    await writer.close()

    assert len(stored(engine)) == 1200
    assert writer.written == 1200
    assert len(inserts) == 3  # 500 + 500 + 200


async def test_when_batch_size_records_wait_then_they_are_written_without_waiting_for_the_interval(engine):
    writer = RecordWriter(engine, batch_size=50, flush_interval=FOREVER)
    await writer.start()
    for i in range(50):
        writer.submit(record(f"r{i}"))
    await eventually(lambda: writer.written == 50, "a full batch is written")
    assert len(stored(engine)) == 50
    await writer.close()


async def test_when_the_interval_elapses_then_a_partial_batch_is_written(engine):
    writer = RecordWriter(engine, batch_size=500, flush_interval=0.02)
    await writer.start()
    writer.submit(record("lonely"))
    await eventually(lambda: writer.written == 1, "the background task writes one record")
    assert set(stored(engine)) == {"lonely"}
    await writer.close()


async def test_when_closed_then_pending_records_are_written(engine):
    writer = RecordWriter(engine, flush_interval=FOREVER)
    await writer.start()
    for i in range(7):
        writer.submit(record(f"r{i}"))
    await writer.close()
    assert len(stored(engine)) == 7
    assert (writer.pending, writer.written) == (0, 7)


async def test_when_the_table_is_gone_then_records_are_kept_and_retried_until_it_is_back(engine, caplog):
    writer = RecordWriter(engine, flush_interval=0.02)
    await writer.start()
    rename_table(engine, "request_records", "request_records_away")
    for i in range(20):
        writer.submit(record(f"r{i}", key_id="customer-secret-key"))
    await eventually(lambda: writer.errors >= 2, "two failed write attempts")
    assert (writer.pending, writer.written, writer.dropped) == (20, 0, 0)

    rename_table(engine, "request_records_away", "request_records")
    await eventually(lambda: writer.written == 20, "the kept records are written")
    assert set(stored(engine)) == {f"r{i}" for i in range(20)}
    await writer.close()
    assert "write failed" in caplog.text
    assert "customer-secret-key" not in caplog.text and "r19" not in caplog.text


@pytest.mark.postgres
async def test_when_the_postgres_database_is_dropped_and_recreated_then_the_writer_reconnects(
    postgres_url, postgres_server_url
):
    migrate(postgres_url)
    engine = make_engine(postgres_url)
    admin = sa.create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    name = postgres_url.rsplit("/", 1)[1]
    writer = RecordWriter(engine, flush_interval=0.02)
    await writer.start()
    writer.submit(record("before"))
    await eventually(lambda: writer.written == 1, "the first record is written")

    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    writer.submit(record("during"))
    await eventually(lambda: writer.errors >= 1, "a failed write")
    assert writer.pending == 1
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    migrate(postgres_url)

    await eventually(lambda: writer.written == 2, "the kept record is written")
    assert set(stored(engine)) == {"during"}
    await writer.close()
    engine.dispose()
    admin.dispose()


async def test_when_the_database_stays_down_at_close_then_close_returns_and_counts_the_loss(engine):
    writer = RecordWriter(engine, flush_interval=0.01, close_timeout=0.05)
    rename_table(engine, "request_records", "request_records_away")
    for i in range(3):
        writer.submit(record(f"r{i}"))
    await writer.close()
    assert (writer.pending, writer.written, writer.dropped) == (0, 0, 3)


async def test_when_more_than_max_pending_are_waiting_then_the_oldest_are_dropped_and_counted(engine):
    writer = RecordWriter(engine, max_pending=5, flush_interval=FOREVER)
    for i in range(8):
        writer.submit(record(f"r{i}"))
    assert (writer.pending, writer.dropped) == (5, 3)
    await writer.close()
    assert set(stored(engine)) == {f"r{i}" for i in range(3, 8)}


async def test_when_records_are_malformed_then_they_are_rejected_and_the_rest_written(engine, caplog):
    writer = RecordWriter(engine, flush_interval=FOREVER)
    writer.submit(record("good-1"))
    writer.submit(record("bad-unknown-column", colour="blue"))
    writer.submit({"id": "bad-missing-model", "route": "chat", "status": 200, "latency_ms": 1.0})
    writer.submit(record("bad-null-model", model=None))
    writer.submit(record("bad-status-text", status="200"))
    writer.submit(record("bad-nan-cost", cost_usd=float("nan")))
    writer.submit(record("bad-huge-tokens", prompt_tokens=2**40))
    writer.submit(record("good-2", latency_ms=3))  # an int where a float goes is fine
    await writer.close()
    assert set(stored(engine)) == {"good-1", "good-2"}
    assert (writer.written, writer.rejected, writer.pending) == (2, 6, 0)
    assert "6 rejected" in caplog.text and "colour" in caplog.text
    assert "bad-" not in caplog.text


@pytest.mark.postgres
async def test_when_the_database_refuses_one_row_then_only_that_row_is_rejected(postgres_url):
    migrate(postgres_url)
    engine = make_engine(postgres_url)
    writer = RecordWriter(engine, flush_interval=FOREVER)
    writer.submit(record("good-1"))
    writer.submit(record("refused", model="nul\x00byte"))  # PostgreSQL text cannot hold NUL
    writer.submit(record("good-2"))
    await writer.close()
    assert set(stored(engine)) == {"good-1", "good-2"}
    assert (writer.written, writer.rejected) == (2, 1)
    engine.dispose()


async def test_when_the_same_id_arrives_twice_then_it_is_stored_once_and_nothing_blocks(engine):
    writer = RecordWriter(engine, flush_interval=FOREVER)
    writer.submit(record("dup", cost_usd=1.0))
    writer.submit(record("other"))
    assert await writer.flush() is True
    writer.submit(record("dup", cost_usd=2.0))  # e.g. a batch retried after its commit did land
    writer.submit(record("later"))
    await writer.close()
    rows = stored(engine)
    assert set(rows) == {"dup", "other", "later"}
    assert rows["dup"]["cost_usd"] == 1.0
    assert (writer.pending, writer.rejected) == (0, 0)


async def test_when_flush_fails_then_it_says_so_and_keeps_the_records(engine):
    writer = RecordWriter(engine, flush_interval=FOREVER)
    rename_table(engine, "request_records", "request_records_away")
    writer.submit(record("kept"))
    assert await writer.flush() is False
    assert (writer.pending, writer.errors) == (1, 1)
    rename_table(engine, "request_records_away", "request_records")
    assert await writer.flush() is True
    assert set(stored(engine)) == {"kept"}


async def test_when_submitted_after_close_then_dropped_and_counted(engine):
    writer = RecordWriter(engine)
    await writer.start()
    await writer.close()
    writer.submit(record("late"))
    assert (writer.dropped, writer.pending) == (1, 0)
    assert stored(engine) == {}
