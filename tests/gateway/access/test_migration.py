"""The 0002 migration and ``gateway/access/models.py`` describe the same tables."""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from gateway.db import load_models

ACCESS = {"teams", "api_keys", "model_overrides", "config_version"}


def _touches_access(diff) -> bool:
    # A diff is a tuple (or a list of tuples) holding Table/Index/Column objects or table names.
    text = repr(diff)
    return any(re.search(rf"\b{table}\b", text) for table in ACCESS)


def test_when_migrated_then_the_access_tables_match_the_models(engine: sa.Engine):
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), load_models())
    assert [d for d in diffs if _touches_access(d)] == []
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version FROM config_version WHERE id = 1")).scalar() == 0
