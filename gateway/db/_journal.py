"""The record writer's write-ahead journal: records survive a killed process (SIGKILL, OOM killer).

``append`` writes each submitted record as one JSON line, ``[submitted_at, record]``, with one unbuffered
``os.write`` on an ``O_APPEND`` descriptor. The line is in the OS page cache when ``submit`` returns, so
it outlives the process; it does not outlive the machine (power loss, kernel panic) unless it was
fsynced, which ``fsync=True`` does for each segment when it is sealed, i.e. before its batch is written.

Files in the journal folder, per process (``<prefix>`` is ``<pid>-<8 hex>``, unique even across
containers that share the folder and reuse pids):

    <prefix>.lock             exclusive ``flock`` held for the life of the process: "these are mine"
    <prefix>-00000001.jsonl   segments; the flusher seals the current one each time it takes a batch

A segment is deleted when every row in it was committed or rejected. Rows dropped from memory (the
``max_pending`` bound, a database still down at close) keep their segment on disk for the next start.

With ``shipped=True`` the segments are read back and written to the database by a recorder process
(``gateway/recorder``), not by this process: ``rotate`` then seals the current segment and opens the next at
once (a segment is sealed exactly when a later one exists, which is all the recorder needs to know), and
nothing here deletes a segment or, at ``close``, the lock file: the recorder takes the lock once this writer
has let go of it, ships what is left and cleans up.
At start another writer claims every prefix whose lock it can take (its owner is dead) and replays it:
ON CONFLICT DO NOTHING on the id makes a row that had landed before the crash a no-op.
The folder must be on a local filesystem: ``flock`` is not reliable on network filesystems.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from gateway.db._rows import COLUMNS
from gateway.db.models import RequestRecord

log = logging.getLogger("gateway.db.writer")

FILE_NAME = re.compile(r"^(\d+-[0-9a-f]{8})(?:\.lock|-\d{8}\.jsonl)$")
DATETIME_COLUMNS = tuple(c.name for c in COLUMNS if c.kind is datetime)
_SEGMENT_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC


@dataclass(slots=True, eq=False)
class Segment:
    """One segment file. ``outstanding``: rows appended and not yet committed or rejected."""

    path: Path
    fd: int | None
    outstanding: int = 0
    sealed: bool = False


class Journal:
    """The segments of one writer. Runs on the event loop; every call is a short syscall or two."""

    def __init__(self, directory: str | Path, *, fsync: bool, retry_interval: float, shipped: bool = False) -> None:
        self.directory = Path(directory)
        self.fsync = fsync
        self.shipped = shipped
        self.prefix = ""
        #: Appends or opens that failed; meanwhile records are kept in memory only.
        self.errors = 0
        self._retry_interval = retry_interval
        self._lock_fd: int | None = None
        self._seq = 0
        self._current: Segment | None = None
        self._kept: set[Segment] = set()  # sealed, rows outstanding
        self._retry_at = self._log_at = 0.0

    def append(self, record: Any, submitted_at: float) -> Segment | None:
        """Journal one record; the segment it went to, or ``None`` if it is in memory only."""
        seg = self._current or self._open()
        if seg is None:
            return None
        try:
            line = orjson.dumps((submitted_at, record), default=_encode, option=orjson.OPT_APPEND_NEWLINE)
        except orjson.JSONEncodeError:
            return None  # a value JSON cannot hold: the row will almost surely be rejected anyway
        try:
            if os.write(seg.fd, line) != len(line):  # type: ignore[arg-type]
                # A short write (disk full) leaves a torn line; replay skips it, nothing may follow it.
                raise OSError(errno.ENOSPC, "short write")
        except OSError as exc:
            self._failed(exc)
            self._seal(seg)
            return None
        seg.outstanding += 1
        return seg

    def open(self) -> str | None:
        """Open the first segment now (else the first ``append`` does); the writer prefix, or ``None``."""
        if self._current is None:
            self._open()
        return self.prefix or None

    def rotate(self) -> Segment | None:
        """Seal the current segment (its rows are all queued now); returned for ``sync`` when fsyncing.
        Shipped: seal it only if it holds rows, and open its successor at once."""
        seg = self._current
        if seg is None:
            return None
        if self.shipped:
            if seg.outstanding:
                self._seal(seg)
                self._open()
            return None
        keep_fd = self.fsync and seg.outstanding > 0
        self._seal(seg, close=not keep_fd)
        return seg if keep_fd else None

    def sync(self, seg: Segment) -> None:
        """In a worker thread: fsync a sealed segment and the folder entry naming it, then close it."""
        try:
            make_durable(seg.fd, self.directory)  # type: ignore[arg-type]
        except OSError as exc:
            self.errors += 1
            log.warning("request records: journal fsync failed (%s)", _describe(exc))
        finally:
            os.close(seg.fd)  # type: ignore[arg-type]
            seg.fd = None

    def settled(self, taken: Iterable[Segment | None], returned: Iterable[Segment | None]) -> None:
        """Rows of ``taken`` were written or rejected, except ``returned`` (back in the queue)."""
        counts: dict[Segment, int] = {}
        for seg in taken:
            if seg is not None:
                counts[seg] = counts.get(seg, 0) + 1
        for seg in returned:
            if seg is not None:
                counts[seg] -= 1
        for seg, n in counts.items():
            seg.outstanding -= n
            if seg.sealed and not seg.outstanding:
                self._delete(seg)

    def close(self) -> int:
        """Seal everything and release the folder; the number of rows left in it for the next start
        (shipped: for the recorder, which is not counted here)."""
        if self._current is not None:
            self._seal(self._current)
        if self.shipped:
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # the recorder sees the lock free: everything is sealed now
                self._lock_fd = None
            return 0
        left = sum(seg.outstanding for seg in self._kept)
        if self._lock_fd is not None:
            if not self._kept:
                with contextlib.suppress(OSError):
                    os.unlink(self.directory / f"{self.prefix}.lock")
            os.close(self._lock_fd)
            self._lock_fd = None
        return left

    def _open(self) -> Segment | None:
        now = time.monotonic()
        if now < self._retry_at:
            return None
        try:
            if self._lock_fd is None:
                self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                self.prefix, self._lock_fd = _own_prefix(self.directory)
            self._seq += 1
            path = self.directory / f"{self.prefix}-{self._seq:08d}.jsonl"
            seg = Segment(path, os.open(path, _SEGMENT_FLAGS, 0o600))
        except OSError as exc:
            self._failed(exc)
            return None
        self._current = seg
        return seg

    def _seal(self, seg: Segment, close: bool = True) -> None:
        seg.sealed = True
        if self._current is seg:
            self._current = None
        if close and seg.fd is not None:
            os.close(seg.fd)
            seg.fd = None
        if self.shipped:
            return  # the recorder deletes it once written
        if seg.outstanding:
            self._kept.add(seg)
        else:
            self._delete(seg)

    def _delete(self, seg: Segment) -> None:
        self._kept.discard(seg)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(seg.path)

    def _failed(self, exc: OSError) -> None:
        self.errors += 1
        now = time.monotonic()
        self._retry_at = now + self._retry_interval
        if now >= self._log_at:  # once per interval: a full disk must not flood the log
            self._log_at = now + self._retry_interval
            log.warning(
                "request records: journal not writable (%s), records kept in memory only (%d errors so far)",
                _describe(exc),
                self.errors,
            )


def _own_prefix(directory: Path) -> tuple[str, int]:
    """Create and lock ``<prefix>.lock``. A replayer may lock and delete a brand-new lock file before
    its creator locks it; the creator sees that (lock refused or file gone) and picks another prefix."""
    for _ in range(5):
        prefix = f"{os.getpid()}-{secrets.token_hex(4)}"
        path = directory / f"{prefix}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        if take_lock(fd, path):
            return prefix, fd
        os.close(fd)
    raise OSError(errno.EAGAIN, "could not take a journal lock")


def make_durable(fd: int, directory: Path) -> None:
    """fsync a segment's data and the folder entry naming it (``journal_fsync``). Raises ``OSError``."""
    os.fsync(fd)
    dir_fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def take_lock(fd: int, path: Path) -> bool:
    """Take ``flock`` without waiting, and check ``path`` still names the locked file."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except (BlockingIOError, FileNotFoundError):
        return False


def _encode(value: Any) -> Any:
    if isinstance(value, RequestRecord):
        return {c.name: getattr(value, c.name) for c in COLUMNS}
    raise TypeError


def _describe(exc: OSError) -> str:
    code = errno.errorcode.get(exc.errno or 0)
    return f"{type(exc).__name__}/{code}" if code else type(exc).__name__
