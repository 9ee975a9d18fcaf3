"""The recorder process's memory is bounded whatever its backlog: a journal far larger than its batches, spans
arriving faster than the collector takes them. Measured as the peak resident size of the real process
(``VmHWM``), against generous bounds: without the bounds each backlog below takes hundreds of MB."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from gateway.db import make_engine, migrate

MiB = 1 << 20


def recorder(settings: dict) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.recorder"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    proc.stdin.write(orjson.dumps(settings, option=orjson.OPT_APPEND_NEWLINE))
    proc.stdin.flush()
    assert proc.stdout.readline()  # ready
    return proc


def peak_rss(pid: int) -> int:
    """The process's peak resident set so far, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.fixture
def stuck_collector() -> Iterator[str]:
    """An OTLP endpoint that accepts connections and never answers: every export waits for its timeout."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    yield f"http://127.0.0.1:{server.getsockname()[1]}/v1/traces"
    server.close()


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc (Linux)")
def test_when_spans_arrive_faster_than_the_collector_takes_them_then_the_recorder_stops_reading(stuck_collector):
    proc = recorder({"otlp_endpoint": stuck_collector})
    span = b'{"traceId":"%032x","spanId":"%016x","name":"chat m","kind":2,"attributes":[' + b" " * 3800 + b"]}\n"
    chunk = b"".join(span % (i + 1, i + 1) for i in range(256))  # ~1 MiB
    fd = proc.stdin.fileno()
    os.set_blocking(fd, False)
    sent = 0
    try:
        # Up to 256 MiB, for as long as the recorder keeps reading; it stops once its queue is full.
        while sent < 256 * MiB and select.select([], [fd], [], 3.0)[1]:
            view = memoryview(chunk)
            while view and select.select([], [fd], [], 3.0)[1]:
                view = view[os.write(fd, view) :]
            sent += len(chunk) - len(view)
            if view:
                break
        assert sent < 256 * MiB  # back-pressure: the rest waits in the pipe, i.e. in the gateway, which sheds
        assert peak_rss(proc.pid) < 120 * MiB  # measured: 48 MB (18 MiB read, then it waited)
    finally:
        proc.kill()
        proc.wait()


def record(i: int) -> dict:
    """A request record with every usual column and a ``details`` of a realistic size."""
    return {
        "id": f"r{i}",
        "created_at": "2026-12-01T00:00:00+00:00",
        "key_id": "key-1",
        "team_id": "team-1",
        "model": "m",
        "served_model": "m",
        "upstream": "a",
        "route": "chat",
        "stream": False,
        "status": 200,
        "prompt_tokens": 40,
        "completion_tokens": 16,
        "latency_ms": 1.5,
        "cost_usd": 0.0001,
        "attempts": 1,
        "details": {"guard": "none", "note": "x" * 200, **{f"k{j}": j for j in range(30)}},
    }


def dead_writer(tmp_path: Path) -> tuple[Path, str]:
    """The journal folder of a writer that is gone (its lock file is free), and its prefix."""
    journal = tmp_path / "journal"
    journal.mkdir()
    prefix = "1-0badc0de"
    (journal / f"{prefix}.lock").touch()
    return journal, prefix


def write_segment(path: Path, ids: range) -> None:
    with open(path, "wb") as segment:
        for i in ids:
            segment.write(orjson.dumps([1764547200.0 + i, record(i)], option=orjson.OPT_APPEND_NEWLINE))


#: As the gateway starts its recorder by default: records are inserted with RETURNING (to count them into the rollups).
ROLLUPS = {"enabled": True, "latency_objective_ms": 10_000, "max_age_days": 90}


def ship_all(sqlite_url: str, journal: Path, prefix: str, rows: int) -> int:
    """Run a recorder on the journal until ``rows`` are written; its peak RSS by then."""
    settings = {"database_url": sqlite_url, "journal_dir": str(journal), "prefix": prefix, "interval": 0.1}
    proc = recorder({**settings, "rollups": ROLLUPS})
    try:
        for line in proc.stdout:  # running totals, until all of it is written
            if orjson.loads(line)["written"] >= rows:
                break
        peak = peak_rss(proc.pid)
        proc.stdin.close()  # as a gateway that closes: the recorder finishes and exits
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with make_engine(sqlite_url).connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM request_records")).scalar() == rows
    assert not list(journal.iterdir())
    return peak


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc (Linux)")
def test_when_the_journal_backlog_is_large_then_it_is_shipped_with_bounded_memory(sqlite_url, tmp_path):
    migrate(sqlite_url)
    journal, prefix = dead_writer(tmp_path)
    rows = 60_000
    write_segment(journal / f"{prefix}-00000001.jsonl", range(rows))
    # Measured: 72 MB read a batch at a time, 231 MB with the whole segment parsed at once.
    assert ship_all(sqlite_url, journal, prefix, rows) < 150 * MiB


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc (Linux)")
def test_when_batches_come_in_every_size_then_the_recorder_keeps_few_prepared_statements(sqlite_url, tmp_path):
    """A segment holds however many requests came in one flush interval, so batch sizes vary, and each size is
    another multi-row INSERT that SQLite compiles; the driver's statement cache (128 by default) kept them all."""
    migrate(sqlite_url)
    journal, prefix = dead_writer(tmp_path)
    start = 0
    for size in range(1, 301):
        write_segment(journal / f"{prefix}-{size:08d}.jsonl", range(start, start + size))
        start += size
    # Measured: 89 MB with 16 statements cached per connection, 163 MB with the driver's default of 128.
    assert ship_all(sqlite_url, journal, prefix, start) < 120 * MiB


def server_span(i: int) -> bytes:
    """A request's own span (so the store judges its trace at once) with attributes of a realistic size."""
    attrs = [{"key": "interlock.request_id", "value": {"stringValue": f"r{i}"}}] + [
        {"key": f"interlock.attr{j}", "value": {"stringValue": "v" * 40}} for j in range(40)
    ]
    span = {
        "traceId": f"{i + 1:032x}",
        "spanId": f"{i + 1:016x}",
        "name": "chat m",
        "kind": 2,
        "startTimeUnixNano": "1764547200000000000",
        "endTimeUnixNano": "1764547200001000000",
        "attributes": attrs,
    }
    return orjson.dumps(span, option=orjson.OPT_APPEND_NEWLINE)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc (Linux)")
def test_when_spans_arrive_faster_than_the_trace_store_takes_them_then_its_queue_stays_bounded(sqlite_url):
    """The store parses its queue once per loop interval: between two ticks the reader could take all the pipe
    gives. With the OTLP queue's cap it waits instead, and the backlog stays in the pipe (the gateway sheds)."""
    migrate(sqlite_url)
    proc = recorder({"store_url": sqlite_url, "trace_store": {"keep_ratio": 0.0}, "interval": 0.5})
    chunk = b"".join(server_span(i) for i in range(500))  # ~1 MiB
    fd = proc.stdin.fileno()
    os.set_blocking(fd, False)
    sent = 0
    try:
        while sent < 128 * MiB and select.select([], [fd], [], 3.0)[1]:
            view = memoryview(chunk)
            while view and select.select([], [fd], [], 3.0)[1]:
                view = view[os.write(fd, view) :]
            sent += len(chunk) - len(view)
            if view:
                break
        # Measured: 86 MB; 199 MB without the cap (the peak grew with what was sent).
        assert peak_rss(proc.pid) < 130 * MiB
    finally:
        proc.kill()
        proc.wait()
