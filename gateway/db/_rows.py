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


def to_row(record: dict[str, Any] | RequestRecord, submitted_at: float) -> dict[str, Any]:
    """A dict with every column, ready for ``insert().values``; ``created_at`` defaults to submit time."""
    if isinstance(record, RequestRecord):
        source = {c.name: getattr(record, c.name) for c in COLUMNS}
    elif isinstance(record, dict):
        unknown = record.keys() - COLUMN_NAMES
        if unknown:
            raise RowRejected(f"unknown column(s) {sorted(map(str, unknown))}")
        source = record
    else:
        raise RowRejected(f"expected a dict or RequestRecord, got {type(record).__name__}")
    row: dict[str, Any] = {}
    for col in COLUMNS:
        value = source.get(col.name, col.default)
        if value is _REQUIRED:
            if col.name != "created_at":
                raise RowRejected(f"{col.name} is required")
            value = datetime.fromtimestamp(submitted_at, UTC)
        row[col.name] = _check(col, value)
    return row
