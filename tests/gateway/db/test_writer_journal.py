"""The record writer's write-ahead journal (gateway/db/writer.py with ``journal_dir``): records submitted
by a process that is killed reach the database through the next writer, once; SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from gateway.db import RecordWriter, RequestRecord
from tests.gateway.db.crash_child import crash_records
from tests.gateway.db.support import record, rename_table, stored

FOREVER = 3600.0
REPO = Path(__file__).resolve().parents[3]


async def run_and_kill(engine: Engine, journal: Path, count: int) -> float:
    """Run ``crash_child`` until it has submitted ``count`` records, SIGKILL it; when it submitted them."""
    url = engine.url.render_as_string(hide_password=False)
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.gateway.db.crash_child", url, str(journal), str(count),
        cwd=REPO, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        line = await asyncio.wait_for(child.stdout.readline(), 60)
        assert line.startswith(b"submitted "), line
    finally:
        os.kill(child.pid, signal.SIGKILL)
        assert await child.wait() == -signal.SIGKILL
    return float(line.split()[1])


def segments(journal: Path) -> list[Path]:
    return sorted(journal.glob("*.jsonl"))


def columns(item: dict | RequestRecord) -> dict:
    """The columns the crash test compares, as stored (defaults filled), ``created_at`` aside."""
    if isinstance(item, RequestRecord):
        item = item.model_dump()
    defaults = {"key_id": None, "team_id": None, "stream": False, "ttft_ms": None, "cost_usd": 0.0}
    return {name: item.get(name, defaults.get(name)) for name in ("id", "route", *defaults)}


async def test_when_a_writer_is_killed_before_its_flush_then_the_next_writer_stores_every_record_once(engine, tmp_path):
    journal = tmp_path / "journal"
    count = 300
    submitted_at = await run_and_kill(engine, journal, count)
    assert stored(engine) == {}  # the child never flushed: the records were only in its memory and journal
    with segments(journal)[-1].open("ab") as torn:
        torn.write(b'[1700000000.5,{"id":"torn-')  # what a death in the middle of a write leaves

    writer = RecordWriter(engine, flush_interval=FOREVER, journal_dir=journal)
    await writer.start()
    rows = stored(engine)  # written by start, before it returned

    sent = crash_records(count)
    assert len(rows) == count
    assert sorted(map(columns, rows.values()), key=str) == sorted(map(columns, sent), key=str)
    assert sum(row["cost_usd"] for row in rows.values()) == pytest.approx(sum(0.001 * (i + 1) for i in range(count)))
    for i, item in enumerate(sent):
        created = rows[f"c{i}"]["created_at"]
        if i % 3 == 0:
            assert created == item["created_at"].astimezone(UTC) and created.tzinfo == UTC
        else:  # submit time in the dead process (RequestRecord's own default is earlier still), not replay time
            assert created <= datetime.fromtimestamp(submitted_at, UTC)
    assert (writer.replayed, writer.written, writer.rejected) == (count, count, 0)
    assert list(journal.iterdir()) == []
    await writer.close()


async def test_when_journaled_records_were_already_written_then_a_replay_does_not_duplicate_them(engine, tmp_path):
    first, crashed = tmp_path / "first", tmp_path / "crashed"
    writer = RecordWriter(engine, flush_interval=FOREVER, journal_dir=first)
    for i in range(10):
        writer.submit(record(f"r{i}", cost_usd=1.0))
    # The journal as a process that died just after its batch committed, before deleting the segment.
    shutil.copytree(first, crashed)
    await writer.close()
    assert len(stored(engine)) == 10

    replaying = RecordWriter(engine, flush_interval=FOREVER, journal_dir=crashed)
    await replaying.start()
    rows = stored(engine)
    assert set(rows) == {f"r{i}" for i in range(10)}
    assert sum(row["cost_usd"] for row in rows.values()) == 10.0
    assert (replaying.replayed, replaying.rejected, replaying.errors) == (10, 0, 0)
    assert list(crashed.iterdir()) == []
    await replaying.close()


@pytest.mark.parametrize("fsync", [False, True])
async def test_when_records_are_committed_then_their_segments_are_deleted_and_not_before(engine, tmp_path, fsync):
    journal = tmp_path / "journal"
    writer = RecordWriter(engine, flush_interval=FOREVER, journal_dir=journal, journal_fsync=fsync)
    await writer.start()
    rename_table(engine, "request_records", "request_records_away")
    for i in range(5):
        writer.submit(record(f"r{i}"))
    assert await writer.flush() is False
    writer.submit(record("r5"))  # into a new segment: the first was sealed by the flush
    assert len(segments(journal)) == 2

    rename_table(engine, "request_records_away", "request_records")
    assert await writer.flush() is True
    assert segments(journal) == []
    await writer.close()
    assert list(journal.iterdir()) == []
    assert len(stored(engine)) == 6 and writer.journal_errors == 0


async def test_when_the_database_is_down_at_close_then_the_next_start_writes_the_journaled_records(
    engine, tmp_path, caplog
):
    journal = tmp_path / "journal"
    writer = RecordWriter(engine, flush_interval=0.01, close_timeout=0.05, journal_dir=journal)
    rename_table(engine, "request_records", "request_records_away")
    for i in range(3):
        writer.submit(record(f"r{i}"))
    await writer.close()
    assert (writer.written, writer.dropped) == (0, 3)
    assert "3 records left in the journal" in caplog.text and "records lost" not in caplog.text

    rename_table(engine, "request_records_away", "request_records")
    restarted = RecordWriter(engine, flush_interval=FOREVER, journal_dir=journal)
    await restarted.start()
    assert set(stored(engine)) == {"r0", "r1", "r2"}
    await restarted.close()
    assert list(journal.iterdir()) == []


async def test_when_the_journal_folder_cannot_be_created_then_records_are_kept_in_memory_and_errors_counted(
    engine, tmp_path, caplog
):
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("")
    writer = RecordWriter(engine, flush_interval=FOREVER, journal_dir=in_the_way / "journal")
    await writer.start()
    for i in range(50):
        writer.submit(record(f"r{i}", key_id="customer-secret-key"))
    await writer.close()

    assert set(stored(engine)) == {f"r{i}" for i in range(50)}
    assert writer.journal_errors >= 1 and writer.dropped == 0
    # Logged once, not once per record, and without record contents.
    assert caplog.text.count("journal not writable") == 1
    assert "customer-secret-key" not in caplog.text and "r49" not in caplog.text


async def test_when_writers_share_a_journal_folder_then_only_a_dead_writers_segments_are_replayed(engine, tmp_path):
    journal = tmp_path / "journal"
    live = RecordWriter(engine, flush_interval=FOREVER, journal_dir=journal)
    for i in range(10):
        live.submit(record(f"live-{i}"))
    await run_and_kill(engine, journal, 6)

    starting = RecordWriter(engine, flush_interval=FOREVER, journal_dir=journal)
    await starting.start()
    assert starting.replayed == 6
    assert set(stored(engine)) == {f"c{i}" for i in range(6)}  # not the live writer's records
    assert len(segments(journal)) == 1  # the live writer's

    await starting.close()
    await live.close()
    assert set(stored(engine)) == {f"c{i}" for i in range(6)} | {f"live-{i}" for i in range(10)}
    assert (live.written, live.replayed) == (10, 0)
    assert list(journal.iterdir()) == []
