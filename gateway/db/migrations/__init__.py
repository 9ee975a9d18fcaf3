"""Alembic migrations of the SQL store; a package so installs ship these files."""
