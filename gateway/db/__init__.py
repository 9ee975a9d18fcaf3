"""The SQL store: request records (and, from other libraries, keys and teams), SQLite or PostgreSQL.

engine = make_engine(settings.database.url)
migrate(settings.database.url)                 # at startup, or ``interlock migrate``
writer = RecordWriter(engine, batch_size=..., flush_interval=...)
await writer.start(); writer.submit({...}); await writer.close()
"""

from gateway.db.columns import UTCDateTime, utcnow
from gateway.db.engine import alembic_config, check, current_revision, head_revision, make_engine, migrate
from gateway.db.models import MODEL_MODULES, RequestRecord, load_models
from gateway.db.queries import spend_since
from gateway.db.writer import RecordWriter

__all__ = [
    "MODEL_MODULES",
    "RecordWriter",
    "RequestRecord",
    "UTCDateTime",
    "alembic_config",
    "check",
    "current_revision",
    "head_revision",
    "load_models",
    "make_engine",
    "migrate",
    "spend_since",
    "utcnow",
]
