"""Turn what callers submit (dicts or ``RequestRecord``) into complete, checked rows for one insert.

Runs in the writer's thread, not on the request path. A row that cannot be stored (unknown column,
missing required value, wrong type) is rejected here, so one bad row never blocks a whole batch.
"""

from __future__ import annotations

import math
import types
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Union, get_args, get_origin

from gateway.db.models import RequestRecord

_REQUIRED = object()
# INTEGER columns are 32-bit in PostgreSQL; SQLite would raise OverflowError past 64 bits.
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


@dataclass(slots=True, frozen=True)
class _Column:
    name: str
    kind: type
    nullable: bool
    default: Any


def _columns() -> tuple[_Column, ...]:
    cols = []
    for name, field in RequestRecord.model_fields.items():
        ann = field.annotation
        nullable = get_origin(ann) in (Union, types.UnionType) and type(None) in get_args(ann)
        kind = next(a for a in get_args(ann) if a is not type(None)) if nullable else ann
        default = _REQUIRED if field.is_required() or field.default_factory else field.default
        cols.append(_Column(name, kind, nullable, default))
    return tuple(cols)


COLUMNS = _columns()
COLUMN_NAMES = frozenset(c.name for c in COLUMNS)


class RowRejected(ValueError):
    """The row cannot be stored. The message names the column, never a value (values can identify people)."""


def _check(col: _Column, value: Any) -> Any:
    if value is None:
        if col.nullable:
            return None
        raise RowRejected(f"{col.name} is required")
    kind = col.kind
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        # NaN would turn every later SUM(cost_usd) into NaN (PostgreSQL) or fail NOT NULL (SQLite).
        if not math.isfinite(value):
            raise RowRejected(f"{col.name} must be finite")
        return float(value)
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RowRejected(f"{col.name} must be an integer")
        if not _INT_MIN <= value <= _INT_MAX:
            raise RowRejected(f"{col.name} is out of range")
        return value
    if isinstance(value, kind):
        return value
    raise RowRejected(f"{col.name} must be {kind.__name__}")


def _source(record: dict[str, Any] | RequestRecord) -> dict[str, Any]:
    if isinstance(record, dict):
        if not record.keys() <= COLUMN_NAMES:
            raise RowRejected(f"unknown column(s) {sorted(map(str, record.keys() - COLUMN_NAMES))}")
        return record
    if isinstance(record, RequestRecord):
        return {c.name: getattr(record, c.name) for c in COLUMNS}
    raise RowRejected(f"expected a dict or RequestRecord, got {type(record).__name__}")


def _value(col: _Column, value: Any, submitted_at: float) -> Any:
    if value is _REQUIRED:
        if col.name != "created_at":
            raise RowRejected(f"{col.name} is required")
        value = datetime.fromtimestamp(submitted_at, UTC)
    return _check(col, value)


def to_row(record: dict[str, Any] | RequestRecord, submitted_at: float) -> dict[str, Any]:
    """A dict with every column, ready for ``insert().values``; ``created_at`` defaults to submit time."""
    return dict(zip(NAMES, to_values(record, submitted_at), strict=True))


NAMES = tuple(c.name for c in COLUMNS)
#: Each column's position in ``to_values``.
INDEX = {name: i for i, name in enumerate(NAMES)}


def to_values(record: dict[str, Any] | RequestRecord, submitted_at: float) -> tuple[Any, ...]:
    """The row as a tuple in ``COLUMNS`` order (the insert's parameters), checked like ``to_row``.

    The recorder runs this for every request: a value of exactly its column's type (what the gateway writes)
    takes the short way, anything else the full check, which accepts or rejects it the same as before."""
    get = _source(record).get
    out = []
    for col in COLUMNS:
        value = get(col.name, col.default)
        kind = type(value)
        if kind is col.kind:
            if kind is float:
                if value - value != 0.0:  # NaN or an infinity
                    value = _check(col, value)
            elif kind is int and not _INT_MIN <= value <= _INT_MAX:
                value = _check(col, value)
        elif value is not None or not col.nullable:
            value = _value(col, value, submitted_at)
        out.append(value)
    return tuple(out)
