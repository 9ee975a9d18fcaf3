"""One batch of request records into the database: checked rows, one multi-row INSERT, bad rows isolated.

Shared by the in-process ``RecordWriter`` (its worker thread) and the recorder process
(``gateway/recorder``), so both store and reject rows by the same rules. Blocking: never call it on the
event loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gateway.db._rows import RowRejected, to_row
from gateway.db.models import RequestRecord

# Errors that belong to a row (a constraint, a value the database refuses), not to the connection:
# retrying the batch would fail forever, so the batch is written row by row and such rows are rejected.
_ROW_ERRORS = (sa.exc.IntegrityError, sa.exc.DataError)

#: (record as submitted, time.time() at submit, a tag the caller gets back with unwritten items)
Item = tuple[Any, float, Any]


@dataclass(slots=True)
class Outcome:
    written: int = 0
    rejected: list[str] = field(default_factory=list)
    #: Valid rows not written because the database failed; the caller keeps them for a retry.
    unwritten: list[Item] = field(default_factory=list)
    error: Exception | None = None


def _insert_for(engine: Engine) -> sa.Insert:
    table = RequestRecord.__table__
    # The same id twice (a retried batch whose commit did land, a replayed journal) must not wedge the queue.
    # Only a replay can conflict: ids are ours and unpredictable (gateway/ids.py), never a client's x-request-id
    # (that is ``client_request_id``), so no client can make another request's row be skipped.
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert

        return insert(table).on_conflict_do_nothing(index_elements=["id"])
    if engine.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert

        return insert(table).on_conflict_do_nothing(index_elements=["id"])
    return sa.insert(table)


class Inserter:
    """Writes batches of submitted records with ``engine``; see the module docstring."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._insert = _insert_for(engine)

    def write(self, batch: list[Item]) -> Outcome:
        """Check rows, insert them in one statement, and on a row error isolate the bad rows."""
        outcome = Outcome()
        rows: list[dict[str, Any]] = []
        items: list[Item] = []
        for item in batch:
            try:
                rows.append(to_row(item[0], item[1]))
                items.append((rows[-1], item[1], item[2]))
            except RowRejected as exc:
                outcome.rejected.append(str(exc))
        if not rows:
            return outcome
        try:
            self._execute(rows)
            outcome.written = len(rows)
        except _ROW_ERRORS:
            self._write_one_by_one(items, outcome)
        except Exception as exc:
            outcome.error = exc
            outcome.unwritten = items
        return outcome

    def _write_one_by_one(self, items: list[Item], outcome: Outcome) -> None:
        for i, (row, _submitted_at, _tag) in enumerate(items):
            try:
                self._execute([row])
                outcome.written += 1
            except _ROW_ERRORS as exc:
                outcome.rejected.append(f"refused by the database ({describe(exc)})")
            except Exception as exc:
                outcome.error = exc
                outcome.unwritten = items[i:]
                return

    def _execute(self, rows: list[dict[str, Any]]) -> None:
        with self._engine.begin() as conn:
            conn.execute(self._insert, rows)


def describe(exc: BaseException) -> str:
    """The exception's class (and its driver's): never its message, which can hold bound values."""
    orig = getattr(exc, "orig", None)
    return f"{type(exc).__name__}/{type(orig).__name__}" if orig is not None else type(exc).__name__
