"""The SQL store's fixtures (SQLite and a real PostgreSQL), for the recorder's journal shipping."""

from tests.gateway.db.conftest import engine, migrated_postgres_url

__all__ = ["engine", "migrated_postgres_url"]
