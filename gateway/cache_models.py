"""Table of the caches' stored state: ``interlock_cache_clears``, the invalidations an admin asked for, replayed by
every replica on its in-process caches (``cache_live.py``). Migration: ``0010_cache_clears.py`` (keep the two in
step)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column
from sqlmodel import Field, SQLModel


class CacheClearRow(SQLModel, table=True):
    __tablename__ = "interlock_cache_clears"

    version: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    """The config version the clear was published with: orders it among all admin changes."""
    what: str
    """The ``cache.Invalidation`` as JSON, with ``older_than`` turned into an absolute ``cutoff`` time."""
    at: float
    """``time.time()`` of the clear; rows older than a day are deleted as new ones arrive."""
