"""Engines, migrations and the readiness check of the SQL store (SQLite embedded, PostgreSQL in prod)."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import StaticPool

MIGRATIONS = Path(__file__).parent / "migrations"

# Any fixed 64-bit number: replicas starting together take turns running migrations.
_MIGRATION_LOCK = 0x1A7E_10C4_DB00_0001


def database_url(url: str) -> URL:
    """Parse ``url``; plain ``postgresql://`` (and ``postgres://``) get the psycopg 3 driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str) -> Engine:
    """A pooled engine for ``url``, tuned per database.

    SQLite: WAL journal (readers never block the writer), a busy timeout instead of instant
    ``database is locked`` errors, and connections usable from the writer's thread. PostgreSQL:
    psycopg 3, a connect timeout, and a ping before reuse so a restarted server costs no failed request.
    Bound parameters are left out of error messages: they can hold customer identifiers.
    """
    parsed = database_url(url)
    kwargs: dict = {"hide_parameters": True}
    if parsed.get_backend_name() == "sqlite":
        # A small statement cache: replayed records are inserted with a RETURNING statement per batch size (a
        # 500-row INSERT ... RETURNING is ~0.5 MB prepared; live batches use one one-row statement), and the
        # driver's default of 128 per connection kept the recorder at 163 MB instead of 89 when every batch did.
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30, "cached_statements": 16}
        if parsed.database in (None, "", ":memory:") or parsed.query.get("mode") == "memory":
            # One in-memory database per connection otherwise: every thread would see an empty one.
            kwargs["poolclass"] = StaticPool
        engine = sa.create_engine(parsed, **kwargs)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs["pool_pre_ping"] = True
    if parsed.get_backend_name() == "postgresql":
        connect_args = {}
        if "connect_timeout" not in parsed.query:
            connect_args["connect_timeout"] = 5
        if "application_name" not in parsed.query:
            connect_args["application_name"] = "interlock"
        # A silently dead peer (network partition) is noticed in about a minute, not hours.
        connect_args.update(keepalives=1, keepalives_idle=30, keepalives_interval=10, keepalives_count=3)
        kwargs["connect_args"] = connect_args
    return sa.create_engine(parsed, **kwargs)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    # Safe with WAL (a crash loses at most the last commits, never corrupts) and much faster.
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration pointing at the packaged migrations; no ``alembic.ini`` needed.

    For new revisions: ``command.revision(alembic_config("sqlite:///dev.db"), autogenerate=True, ...)``.
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        # configparser treats % as interpolation; URL-encoded passwords contain it.
        cfg.set_main_option("sqlalchemy.url", database_url(url).render_as_string(False).replace("%", "%%"))
    return cfg


def migrate(url: str) -> None:
    """Bring the database at ``url`` to the newest schema (``alembic upgrade head``); a no-op when current.
    Safe to run from several processes at once (gateway workers and replicas all migrate at startup)."""
    engine = make_engine(url)
    try:
        with _sqlite_file_lock(engine.url), engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                # Held until commit: a second replica waits, then finds nothing left to do.
                lock = sa.text("SELECT pg_advisory_xact_lock(CAST(:k AS bigint))")
                conn.execute(lock, {"k": _MIGRATION_LOCK})
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            conn.commit()
    finally:
        engine.dispose()


@contextlib.contextmanager
def _sqlite_file_lock(url: URL) -> Iterator[None]:
    """SQLite has no advisory locks: ``interlock serve --workers 2`` on a new file had both workers create
    ``alembic_version`` and one fail. An exclusive ``flock`` on a file beside the database serialises them.
    The lock file stays: deleting it while another process waits on it would let a third one in."""
    path = url.database if url.get_backend_name() == "sqlite" else None
    if not path or path == ":memory:" or path.startswith("file:"):
        yield
        return
    fd = os.open(f"{path}.migrate-lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def head_revision() -> str:
    """The newest migration shipped with this package."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at; ``None`` when it was never migrated."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def check(engine: Engine) -> bool:
    """``True`` when the database answers ``SELECT 1``; for ``/ready``. Blocking: call it in a thread."""
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError:
        return False
    return True
