"""One batch of request records into the database: checked rows, one executemany, bad rows isolated.

Shared by the in-process ``RecordWriter`` (its worker thread) and the recorder process
(``gateway/recorder``), so both store and reject rows by the same rules. Blocking: never call it on the
event loop.

SQLite and PostgreSQL get one prepared ``INSERT ... ON CONFLICT (id) DO NOTHING`` of one row, executed for the
whole batch through the driver (``executemany``): the recorder does this for every request, and SQLAlchemy's
per-row parameter handling cost more than the database itself (see the README's benchmark section). Values are
bound as SQLAlchemy would bind them (its processor for ``created_at``; ``details`` as JSON text), so the rows
stored are the same. Other databases go through SQLAlchemy.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect, Engine

from gateway.db._rows import NAMES, RowRejected, to_values
from gateway.db.columns import UTCDateTime
from gateway.db.models import RequestRecord

# Errors that belong to a row (a constraint, a value the database refuses), not to the connection:
# retrying the batch would fail forever, so the batch is written row by row and such rows are rejected.
_ROW_ERRORS = (sa.exc.IntegrityError, sa.exc.DataError)

#: (record as submitted, time.time() at submit, a tag the caller gets back with unwritten items)
Item = tuple[Any, float, Any]
#: A checked row: its values in ``gateway.db._rows.NAMES`` order.
Row = tuple[Any, ...]


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


def _json(value: Any) -> str:
    # As SQLAlchemy's JSON type binds it: ``None`` is JSON null (``none_as_null`` is off), not SQL NULL.
    return "null" if value is None else orjson.dumps(value).decode()


def bind_datetime(dialect: Dialect, column: sa.Column) -> Callable[[Any], Any]:
    """What the driver is given for a value of ``column`` (a ``UTCDateTime``): what SQLAlchemy would give it."""
    bind = column.type._cached_bind_processor(dialect)
    return functools.partial(_sqlite_datetime, bind) if dialect.name == "sqlite" else bind


def _sqlite_datetime(bind: Callable[[Any], Any], value: Any) -> Any:
    """The text SQLAlchemy stores for a UTC datetime in SQLite (``2026-12-02 05:51:21.499455``), made by one C
    call for the usual case (UTC already, as journaled); anything else goes through SQLAlchemy's own."""
    if type(value) is datetime and value.tzinfo is UTC:
        return value.isoformat(" ", "microseconds")[:26]
    return bind(value)


def _converters(dialect: Dialect) -> tuple[tuple[int, Callable[[Any], Any]], ...]:
    """``(position, converter)`` for each column whose values the driver cannot take as checked (``to_values``
    made numbers, booleans and text what they must be): today ``created_at`` and ``details``, and any column
    added later with a type SQLAlchemy converts, through SQLAlchemy's own converter."""
    out = []
    table = RequestRecord.__table__
    for i, name in enumerate(NAMES):
        column = table.c[name]
        if isinstance(column.type, sa.JSON):
            out.append((i, _json))
        elif isinstance(column.type, UTCDateTime):
            out.append((i, bind_datetime(dialect, column)))
        elif not isinstance(column.type, sa.Integer | sa.Float | sa.Boolean | sa.String):
            bind = column.type._cached_bind_processor(dialect)
            if bind is not None:
                out.append((i, bind))
    return tuple(out)


class _DriverInsert:
    """The batch insert through the driver: the SQL text once, and the few values that need converting."""

    def __init__(self, engine: Engine) -> None:
        dialect = engine.dialect
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        self.sql = (
            f"INSERT INTO {RequestRecord.__tablename__} ({', '.join(NAMES)}) "
            f"VALUES ({', '.join([mark] * len(NAMES))}) ON CONFLICT (id) DO NOTHING"
        )
        self._convert = _converters(dialect)

    def params(self, rows: list[Row]) -> list[Row]:
        convert = self._convert
        out = []
        for row in rows:
            values = list(row)
            for i, to_driver in convert:
                values[i] = to_driver(values[i])
            out.append(tuple(values))
        return out

    def execute(self, conn: Connection, rows: list[Row]) -> int:
        """Insert ``rows``; how many were new (the others were there already: a replay)."""
        return conn.exec_driver_sql(self.sql, self.params(rows)).rowcount


class Inserter:
    """Writes batches of submitted records with ``engine``; see the module docstring."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._insert = _insert_for(engine)
        self._driver = _DriverInsert(engine) if engine.dialect.name in ("sqlite", "postgresql") else None

    def write(self, batch: list[Item]) -> Outcome:
        """Check rows, insert them in one statement, and on a row error isolate the bad rows."""
        outcome = Outcome()
        rows: list[Row] = []
        items: list[Item] = []  # as submitted: what is not written goes back to the caller unchanged
        for item in batch:
            try:
                rows.append(to_values(item[0], item[1]))
                items.append(item)
            except RowRejected as exc:
                outcome.rejected.append(str(exc))
        if not rows:
            return outcome
        try:
            self._execute(rows)
            outcome.written = len(rows)
        except _ROW_ERRORS:
            self._write_one_by_one(rows, items, outcome)
        except Exception as exc:
            outcome.error = exc
            outcome.unwritten = items
        return outcome

    def _write_one_by_one(self, rows: list[Row], items: list[Item], outcome: Outcome) -> None:
        for i, row in enumerate(rows):
            try:
                self._execute([row])
                outcome.written += 1
            except _ROW_ERRORS as exc:
                outcome.rejected.append(f"refused by the database ({describe(exc)})")
            except Exception as exc:
                outcome.error = exc
                outcome.unwritten = items[i:]
                return

    def _execute(self, rows: list[Row]) -> None:
        with self._engine.begin() as conn:
            self._insert_rows(conn, rows)

    def _insert_rows(self, conn: Connection, rows: list[Row]) -> int:
        """Insert ``rows`` in ``conn``'s transaction; how many were new, or -1 when the driver cannot say."""
        if self._driver is not None:
            return self._driver.execute(conn, rows)
        return conn.execute(self._insert, as_dicts(rows)).rowcount


def as_dicts(rows: list[Row]) -> list[dict[str, Any]]:
    """Rows as the ``{column: value}`` parameters of a SQLAlchemy statement."""
    return [dict(zip(NAMES, row, strict=True)) for row in rows]


def describe(exc: BaseException) -> str:
    """The exception's class (and its driver's): never its message, which can hold bound values."""
    orig = getattr(exc, "orig", None)
    return f"{type(exc).__name__}/{type(orig).__name__}" if orig is not None else type(exc).__name__
