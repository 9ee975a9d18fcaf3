"""The recorder's half of the request records: ship one writer's sealed journal segments into the database.

The writer (``RecordWriter(shipped=True)`` in the gateway process) appends each record to the newest
segment of its journal and seals a segment by opening the next one, so every segment but the newest is
complete. Once the writer has let go of its lock (it closed, or its process died), the newest is complete
too. Each segment is read back, inserted in batches (``gateway.db._insert``: the same checks and conflict
rules as the in-process writer), and deleted. A row inserted twice (a retry after a failed batch, a replay
by another process) is a no-op, so a crash anywhere here loses nothing and stores nothing twice.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from gateway.db._insert import Inserter, describe
from gateway.db._journal import make_durable, take_lock
from gateway.db._replay import parse_line

log = logging.getLogger("interlock.recorder")


class JournalShipper:
    """Ships the segments of the writer whose files start with ``prefix`` in ``directory``. Blocking."""

    def __init__(self, directory: Path, prefix: str, inserter: Inserter, *, batch_size: int, fsync: bool) -> None:
        self.directory = directory
        self.prefix = prefix
        self.inserter = inserter
        self.batch_size = batch_size
        self.fsync = fsync
        #: Rows written, rows refused (by the checks or the database, or unreadable lines), failed batches.
        self.written = self.rejected = self.errors = 0
        self._lock_path = directory / f"{prefix}.lock"
        self._lock_fd: int | None = None
        self._progress: dict[Path, int] = {}  # rows of a segment already written, when a batch failed after
        self._failing = False

    def writer_gone(self) -> bool:
        """The writer let go of its journal: ours now (or already cleaned up by another process)."""
        if self._lock_fd is not None:
            return True
        try:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return True  # a replaying gateway took it over and finished it
        if take_lock(fd, self._lock_path):
            self._lock_fd = fd
            return True
        os.close(fd)
        return False

    def ship(self) -> bool:
        """Ship every complete segment. ``True`` once the writer is gone and nothing of it is left."""
        gone = self.writer_gone()  # first: a writer that let go makes no new segment after this
        segments = sorted(self.directory.glob(f"{self.prefix}-*.jsonl"))
        for path in segments if gone else segments[:-1]:
            if not self._ship_segment(path):
                return False  # the database failed: the rest waits for the next tick, in order
        if gone:
            self.release(finished=True)
        return gone

    def release(self, finished: bool) -> None:
        """Let go of the writer's lock; ``finished``: its files are all shipped, remove the lock file too."""
        if self._lock_fd is None:
            return
        if finished:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._lock_path)
        os.close(self._lock_fd)
        self._lock_fd = None

    def _ship_segment(self, path: Path) -> bool:
        """Read the segment a batch at a time: a segment can be large (a gateway that could not rotate, a
        backlog replayed), and the recorder's memory must not follow it."""
        try:
            if self.fsync:
                _fsync(path)
            lines = open(path, "rb")  # noqa: SIM115  # closed below, after the last batch
        except FileNotFoundError:
            return True  # shipped by a replaying gateway meanwhile
        # A batch that failed is retried from its first row: rows before it are skipped, not read twice.
        skip = self._progress.get(path, 0)
        done = 0
        with lines:
            for chunk in _batches(lines, self.batch_size, self._bad):
                if done + len(chunk) <= skip:
                    done += len(chunk)
                    continue
                outcome = self.inserter.write([(record, at, None) for record, at in chunk])
                if outcome.rejected:
                    self.rejected += len(outcome.rejected)
                    log.error(
                        "request records: %d rejected: %s", len(outcome.rejected), "; ".join(outcome.rejected[:5])
                    )
                if outcome.error is not None:
                    self.errors += 1
                    self._progress[path] = done
                    if not self._failing:
                        self._failing = True
                        log.warning("request records: write failed (%s); kept in the journal", describe(outcome.error))
                    return False
                self.written += outcome.written
                done += len(chunk)
        if self._failing:
            self._failing = False
            log.warning("request records: database writable again")
        self._progress.pop(path, None)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return True

    def _bad(self, count: int) -> None:
        self.rejected += count
        log.warning("request records: %d unreadable journal lines skipped", count)


def _batches(lines, size: int, on_bad) -> Iterator[list[tuple[dict, float]]]:
    """``(record, submitted_at)`` lists of ``size`` from a segment's lines. The count of unreadable lines goes
    to ``on_bad`` once the last batch was written, so exactly once per segment, even when a batch failed and
    the segment is read again."""
    batch: list[tuple[dict, float]] = []
    bad = 0
    for line in lines:
        line = line.rstrip(b"\n")
        if not line:
            continue
        parsed = parse_line(line)
        if parsed is None:
            bad += 1
            continue
        batch.append(parsed)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
    if bad:
        on_bad(bad)


def _fsync(path: Path) -> None:
    """Make a sealed segment (and its name) durable before its rows are written: see ``journal_fsync``."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        make_durable(fd, path.parent)
    finally:
        os.close(fd)
