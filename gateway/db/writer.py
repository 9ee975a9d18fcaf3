"""Batched writes of request records, off the request path.

``submit`` only appends to a deque. One background task wakes every ``flush_interval`` (or as soon as
``batch_size`` rows wait), and writes them with one multi-row INSERT per batch in a worker thread.
A failed write keeps the rows for the next tick; only ``max_pending`` bounds what is kept.

With ``journal_dir``, ``submit`` also appends the record to a write-ahead journal on local disk
(``_journal.py``), so records waiting in memory survive a killed process; ``start`` replays what dead
writers left there (``_replay.py``).

With ``shipped=True`` (a journal is needed) the rows that reached the journal are not queued here at all: a
recorder process (``gateway/recorder``) reads the sealed segments back and writes them, so none of the
database work shares this process's GIL with the event loop. This writer then only seals a segment every
``flush_interval``; it still writes, in its thread, the rows the journal could not take (a full disk), and
counts what the recorder reports through ``shipped``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from gateway.db._insert import Inserter, Item, Outcome, describe
from gateway.db._journal import Journal
from gateway.db._replay import replay_orphans
from gateway.db.models import RequestRecord

log = logging.getLogger(__name__)


class RecordWriter:
    """Writes ``RequestRecord`` rows in batches; see the module docstring.

    Counters for metrics: ``pending`` (accepted, not yet written), ``written``, ``dropped`` (given up:
    the ``max_pending`` bound, submitted after ``close``, database down at ``close``; with a journal
    these stay in it for the next start), ``rejected`` (rows that cannot be stored), ``errors`` (failed
    write attempts), ``journal_errors`` (failed journal writes) and ``replayed`` (rows read back from
    the journals of dead writers).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        batch_size: int = 500,
        flush_interval: float = 0.5,
        max_pending: int = 100_000,
        close_timeout: float = 5.0,
        journal_dir: str | Path | None = None,
        journal_fsync: bool = False,
        shipped: bool = False,
    ) -> None:
        """``journal_dir``: a folder on a local disk for the write-ahead journal, shared by every writer on
        the machine that writes to the same database (``None``: memory only, a killed process loses up
        to ``flush_interval`` of records). The journal survives the death of the process, not of the
        machine; ``journal_fsync`` also fsyncs each segment before its batch is written, so rows kept
        while the database is down survive a power loss too (rows of the last interval still do not).
        """
        self._inserter = Inserter(engine)
        self._batch_size = batch_size
        self._interval = flush_interval
        self._max_pending = max_pending
        self._close_timeout = close_timeout
        self._queue: deque[Item] = deque()
        self._in_flight = 0
        self._written = self._dropped = self._rejected = self._errors = 0
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task | None = None
        self._closed = False
        self._failing = False
        if shipped and journal_dir is None:
            raise ValueError("a shipped record writer needs a journal_dir")
        self._journal = (
            Journal(
                journal_dir,
                fsync=journal_fsync,
                retry_interval=min(max(flush_interval, 1.0), 30.0),
                shipped=shipped,
            )
            if journal_dir is not None
            else None
        )
        self._shipped = shipped
        self._shipping = 0  # journaled rows the recorder has not reported written or rejected yet
        self._replay_due = self._journal is not None
        self._replayed = 0

    @property
    def pending(self) -> int:
        return len(self._queue) + self._in_flight + self._shipping

    @property
    def written(self) -> int:
        return self._written

    @property
    def dropped(self) -> int:
        return self._dropped

    @property
    def rejected(self) -> int:
        return self._rejected

    @property
    def errors(self) -> int:
        return self._errors

    @property
    def journal_errors(self) -> int:
        return self._journal.errors if self._journal is not None else 0

    @property
    def replayed(self) -> int:
        return self._replayed

    def submit(self, record: RequestRecord | dict[str, Any]) -> None:
        """Queue one record (a dict of column names is cheapest). Never blocks; call from the event loop.

        ``created_at`` defaults to now. The dict is stored as is: do not change it afterwards.
        With a journal the record is on disk (page cache) when this returns.
        """
        if self._closed:
            self._dropped += 1
            return
        now = time.time()
        segment = self._journal.append(record, now) if self._journal is not None else None
        if segment is not None and self._shipped:
            self._shipping += 1  # on disk; the recorder takes it from there
            return
        queue = self._queue
        if len(queue) >= self._max_pending:
            queue.popleft()
            self._dropped += 1
        queue.append((record, now, segment))
        if len(queue) >= self._batch_size and not self._wake.is_set():
            self._wake.set()

    @property
    def journal_prefix(self) -> str | None:
        """The prefix of this writer's journal files (opening the journal if need be), for the recorder."""
        return self._journal.open() if self._journal is not None else None

    def shipped(self, written: int, rejected: int) -> None:
        """The recorder's report: this many journaled rows were written, this many rejected."""
        self._written += written
        self._rejected += rejected
        self._shipping = max(0, self._shipping - written - rejected)

    async def start(self) -> None:
        """Replay the journals of dead writers (with a journal), then launch the background flush task.

        The replay is awaited, so spend read from the database afterwards includes it; if the database
        fails meanwhile, the background task retries it every interval.
        """
        if self._task is None and not self._closed:
            if self._journal is not None:
                await self._replay()
            self._task = asyncio.create_task(self._run(), name="interlock-record-writer")

    async def flush(self) -> bool:
        """Write everything queued now; ``False`` when the database failed (the rows stay queued)."""
        async with self._lock:
            journal = self._journal
            if journal is not None:
                # Everything in the sealed segment is in the queue now; it is deleted once written.
                sealed = journal.rotate()
                if sealed is not None:
                    await asyncio.to_thread(journal.sync, sealed)
            while self._queue:
                batch = [self._queue.popleft() for _ in range(min(self._batch_size, len(self._queue)))]
                self._in_flight = len(batch)
                try:
                    outcome = await asyncio.to_thread(self._inserter.write, batch)
                except BaseException:
                    # Cancelled, or a bug outside the database calls: keep the rows all the same (a
                    # write that still lands in its thread is harmless, duplicates are ignored).
                    self._queue.extendleft(reversed(batch))
                    raise
                finally:
                    self._in_flight = 0
                self._settle(outcome)
                if journal is not None:
                    journal.settled((item[2] for item in batch), (item[2] for item in outcome.unwritten))
                if outcome.error is not None:
                    return False
            return True

    async def close(self) -> None:
        """Stop the task and write what is left, retrying for up to ``close_timeout`` seconds."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._stop_and_flush()
        finally:
            if self._journal is not None and (left := self._journal.close()):
                log.warning("request records: %d records left in the journal for the next start", left)

    async def _stop_and_flush(self) -> None:
        if self._task is not None:
            self._stop.set()
            self._wake.set()
            await self._task
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._close_timeout
        while not await self.flush():
            left = deadline - loop.time()
            if left <= 0:
                lost = len(self._queue)
                journaled = sum(1 for item in self._queue if item[2] is not None)
                self._queue.clear()
                self._dropped += lost
                if lost > journaled:  # the journaled ones are written by the next start
                    lost -= journaled
                    log.error("request records: database unavailable at shutdown, %d records lost", lost)
                return
            await asyncio.sleep(min(self._interval, left))

    async def _run(self) -> None:
        healthy = True
        while not self._stop.is_set():
            # After a failure, wait a full interval whatever arrives: no retry storm on a down database.
            await _wait(self._wake if healthy else self._stop, self._interval)
            self._wake.clear()
            try:
                healthy = await self.flush()
                if healthy and self._replay_due:
                    healthy = await self._replay()
            except Exception:  # never let the task die: rows would pile up unseen
                log.exception("request records: unexpected error while writing")
                healthy = False

    async def _replay(self) -> bool:
        """Write what dead writers left in the journal folder; ``False`` if the database failed (the
        rest is retried by the background task)."""
        journal = self._journal
        assert journal is not None
        self._replay_due = False
        try:
            done, rows = await replay_orphans(journal.directory, journal.prefix, self._write_replayed)
        except OSError as exc:  # an unreadable folder: retrying every interval would not help
            log.warning("request records: journal folder not readable (%s), replay stopped", describe(exc))
            return True
        except Exception:  # a replay must never stop the gateway from starting
            log.exception("request records: unexpected error while replaying the journal")
            return True
        self._replayed += rows
        if rows:
            log.warning("request records: %d records replayed from the journals of stopped writers", rows)
        self._replay_due = not done
        return done

    async def _write_replayed(self, records: list[tuple[Any, float]]) -> bool:
        for start in range(0, len(records), self._batch_size):
            batch = [(record, at, None) for record, at in records[start : start + self._batch_size]]
            outcome = await asyncio.to_thread(self._inserter.write, batch)
            self._settle(outcome, requeue=False)
            if outcome.error is not None:
                return False
        return True

    def _settle(self, outcome: Outcome, requeue: bool = True) -> None:
        self._written += outcome.written
        if outcome.rejected:
            self._rejected += len(outcome.rejected)
            reasons = "; ".join(outcome.rejected[:5])
            log.error("request records: %d rejected: %s", len(outcome.rejected), reasons)
        if outcome.error is not None:
            self._errors += 1
            if requeue:
                self._queue.extendleft(reversed(outcome.unwritten))
                while len(self._queue) > self._max_pending:
                    self._queue.popleft()
                    self._dropped += 1
            # Only the class: database messages and bound parameters can contain customer identifiers.
            log.warning(
                "request records: write failed (%s), %d records kept for retry",
                describe(outcome.error),
                self.pending if requeue else len(outcome.unwritten),
            )
            self._failing = True
        elif self._failing and outcome.written:
            self._failing = False
            log.warning("request records: database writable again, %d records pending", self.pending)


async def _wait(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()
