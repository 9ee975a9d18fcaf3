"""Find, read and replay the journal segments of writers that died (``_journal`` has the file layout)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from gateway.db._journal import DATETIME_COLUMNS, FILE_NAME, take_lock

log = logging.getLogger("gateway.db.writer")


@dataclass(slots=True)
class Orphan:
    """The segments of a dead writer, locked by us until ``release``."""

    lock_path: Path
    lock_fd: int
    segments: list[Path]

    def release(self, finished: bool) -> None:
        """Unlock; when ``finished`` (every segment replayed and deleted) delete the lock file first."""
        if finished:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.lock_path)
        os.close(self.lock_fd)


def claim_orphans(directory: Path, own_prefix: str) -> list[Orphan]:
    """(Blocking.) Lock every writer prefix in ``directory`` whose lock is free: its owner is gone.

    A live writer holds its lock, so its segments are never taken. Segments whose lock file is missing
    (deleted by hand) are claimed by creating it.
    """
    if not directory.is_dir():
        return []
    prefixes = {m.group(1) for name in os.listdir(directory) if (m := FILE_NAME.match(name))}
    prefixes.discard(own_prefix)
    orphans = []
    for prefix in sorted(prefixes):
        path = directory / f"{prefix}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        if not take_lock(fd, path):
            os.close(fd)
            continue
        # Listed after locking: the owner is gone, so no segment appears any more.
        orphans.append(Orphan(path, fd, sorted(directory.glob(f"{prefix}-*.jsonl"))))
    return orphans


def read_segment(path: Path) -> tuple[list[tuple[dict[str, Any], float]], int]:
    """(Blocking.) The ``(record, submitted_at)`` pairs of a segment, and how many lines were unreadable.

    A torn last line (the process died inside a write, or the disk filled) is one unreadable line.
    """
    records = []
    bad = 0
    for line in path.read_bytes().splitlines():
        if not line:
            continue
        parsed = parse_line(line)
        if parsed is None:
            bad += 1
        else:
            records.append(parsed)
    return records, bad


def parse_line(line: bytes) -> tuple[dict[str, Any], float] | None:
    """One journal line as ``(record, submitted_at)``; ``None`` when it is unreadable. orjson wrote datetimes
    as RFC 3339 text; they are parsed back for the datetime columns."""
    try:
        submitted_at, record = orjson.loads(line)
        if not isinstance(record, dict) or not isinstance(submitted_at, int | float):
            raise ValueError
    except (ValueError, TypeError):  # orjson.JSONDecodeError is a ValueError; not a pair
        return None
    for name in DATETIME_COLUMNS:
        value = record.get(name)
        if type(value) is str:  # the recorder parses every request's line: no context manager per value
            try:  # noqa: SIM105
                record[name] = datetime.fromisoformat(value)
            except ValueError:
                pass  # left as text, to be rejected like the original
    return record, float(submitted_at)


async def replay_orphans(
    directory: Path, own_prefix: str, write: Callable[[list[tuple[dict[str, Any], float]]], Awaitable[bool]]
) -> tuple[bool, int]:
    """Claim dead writers' segments and ``write`` their rows, deleting each segment once written.

    Returns ``(done, rows)``: ``done`` is ``False`` when ``write`` failed; what is left stays on disk,
    unlocked, for the next attempt. Rows are read one segment at a time (a segment holds one interval).
    """
    orphans = await asyncio.to_thread(claim_orphans, directory, own_prefix)
    rows = 0
    try:
        while orphans:
            for path in orphans[0].segments:
                try:
                    records, bad = await asyncio.to_thread(read_segment, path)
                except FileNotFoundError:
                    continue
                if bad:
                    log.warning("request records: %d unreadable journal lines skipped", bad)
                if not await write(records):
                    return False, rows
                rows += len(records)
                with contextlib.suppress(FileNotFoundError):
                    await asyncio.to_thread(os.unlink, path)
            orphans.pop(0).release(finished=True)
    finally:
        for orphan in orphans:
            orphan.release(finished=False)
    return True, rows
