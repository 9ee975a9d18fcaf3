"""request_records.client_request_id: the client's ``x-request-id``, apart from our primary key.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

Until now the primary key was the client's ``x-request-id`` (inserted with ON CONFLICT DO NOTHING), so a
client could suppress records by repeating an id or sending another caller's next id first. From here the
key is always ours (``gateway.ids``) and the client's id is kept here, indexed so a request can be found by
it. Existing rows keep their id; their ``client_request_id`` stays null, since which ids came from clients
is not known.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("request_records") as batch:
        batch.add_column(sa.Column("client_request_id", sa.String(), nullable=True))
    op.create_index("ix_request_records_client_request_id", "request_records", ["client_request_id"])


def downgrade() -> None:
    op.drop_index("ix_request_records_client_request_id", table_name="request_records")
    with op.batch_alter_table("request_records") as batch:
        batch.drop_column("client_request_id")
