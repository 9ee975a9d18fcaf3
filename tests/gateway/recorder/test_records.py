"""The recorder ships a gateway's journal into SQL (gateway/recorder/records.py): sealed segments only while
the gateway writes, everything once it let go, nothing lost or stored twice when the database fails."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from gateway.db import RecordWriter
from gateway.db._insert import Inserter
from gateway.recorder.records import JournalShipper
from tests.gateway.db.support import record, rename_table, stored

FOREVER = 3600.0


@pytest.fixture
async def writer(engine: Engine, tmp_path):
    w = RecordWriter(engine, journal_dir=tmp_path / "journal", flush_interval=FOREVER, shipped=True)
    await w.start()
    yield w
    await w.close()


def shipper_for(
    engine: Engine, writer: RecordWriter, tmp_path, batch_size: int = 500, fsync: bool = False
) -> JournalShipper:
    return JournalShipper(
        tmp_path / "journal", writer.journal_prefix, Inserter(engine), batch_size=batch_size, fsync=fsync
    )


async def test_when_the_gateway_writes_then_only_sealed_segments_are_shipped(engine, writer, tmp_path):
    shipper = shipper_for(engine, writer, tmp_path)
    writer.submit(record("a"))
    writer.submit(record("b"))
    assert writer.pending == 2
    assert shipper.ship() is False
    assert stored(engine) == {}  # the segment is still being appended to
    await writer.flush()  # seals it
    writer.submit(record("c"))
    assert shipper.ship() is False
    assert set(stored(engine)) == {"a", "b"}
    writer.shipped(shipper.written, shipper.rejected)
    assert writer.pending == 1 and writer.written == 2


@pytest.mark.parametrize("fsync", [False, True])
async def test_when_the_gateway_lets_go_then_everything_is_shipped_and_the_folder_is_left_empty(
    engine, writer, tmp_path, fsync
):
    shipper = shipper_for(engine, writer, tmp_path, fsync=fsync)
    for i in range(5):
        writer.submit(record(f"r{i}"))
    assert shipper.ship() is False
    await writer.close()
    assert shipper.ship() is True
    assert set(stored(engine)) == {f"r{i}" for i in range(5)}
    assert list((tmp_path / "journal").iterdir()) == []
    assert (shipper.written, shipper.rejected, shipper.errors) == (5, 0, 0)


async def test_when_the_database_fails_then_rows_wait_on_disk_and_land_once(engine, writer, tmp_path):
    shipper = shipper_for(engine, writer, tmp_path, batch_size=2)
    for i in range(5):
        writer.submit(record(f"r{i}"))
    await writer.close()
    rename_table(engine, "request_records", "request_records_away")
    try:
        assert shipper.ship() is False
        assert shipper.errors == 1
        assert any((tmp_path / "journal").glob("*.jsonl"))  # kept
    finally:
        rename_table(engine, "request_records_away", "request_records")
    assert shipper.ship() is True
    assert set(stored(engine)) == {f"r{i}" for i in range(5)}
    assert shipper.written == 5


async def test_when_lines_are_unreadable_or_rows_invalid_then_they_are_counted_and_the_rest_lands(
    engine, writer, tmp_path
):
    shipper = shipper_for(engine, writer, tmp_path)
    writer.submit(record("good"))
    writer.submit({"id": "bad", "no_such_column": 1})
    await writer.close()
    segment = sorted((tmp_path / "journal").glob("*.jsonl"))[0]  # with the rows; a last one is empty
    with segment.open("ab") as torn:
        torn.write(b'[1700000000.5,{"id":"torn-')
    assert shipper.ship() is True
    assert set(stored(engine)) == {"good"}
    assert (shipper.written, shipper.rejected) == (1, 2)


async def test_when_another_gateway_replayed_the_journal_first_then_the_shipper_just_ends(engine, writer, tmp_path):
    shipper = shipper_for(engine, writer, tmp_path)
    writer.submit(record("a"))
    await writer.close()
    late = RecordWriter(engine, journal_dir=tmp_path / "journal", flush_interval=FOREVER)
    await late.start()  # its start replays the journal it finds unlocked
    await late.close()
    assert set(stored(engine)) == {"a"}
    assert shipper.ship() is True
    assert shipper.written == 0
