"""Alembic environment, configured in code (``gateway.db.engine.alembic_config``), no ``alembic.ini``.

``migrate`` passes an open connection in ``config.attributes["connection"]``; otherwise the URL in
the ``sqlalchemy.url`` main option is used (e.g. when generating a revision).
"""

from __future__ import annotations

from alembic import context
from sqlmodel.sql.sqltypes import AutoString

from gateway.db.columns import UTCDateTime
from gateway.db.engine import make_engine
from gateway.db.models import load_models

config = context.config
target_metadata = load_models()


def _render_item(kind: str, obj, _autogen_context):
    # Generated revisions should need only ``sqlalchemy``: our column types map to plain ones.
    if kind == "type" and isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(**kwargs) -> None:
    context.configure(target_metadata=target_metadata, compare_type=True, render_item=_render_item, **kwargs)


def run_offline() -> None:
    url = config.get_main_option("sqlalchemy.url")
    _configure(url=url, literal_binds=True, render_as_batch=url is not None and url.startswith("sqlite"))
    with context.begin_transaction():
        context.run_migrations()


def _run(connection) -> None:
    # SQLite cannot ALTER most things: batch mode rebuilds the table instead.
    _configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
