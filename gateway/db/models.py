"""Tables of the gateway's SQL store, all on one ``SQLModel.metadata``.

Other libraries add their tables in their own module and list it in ``MODEL_MODULES``; migrations
(``gateway/db/migrations``) and ``load_models`` import every listed module that exists, so all
tables share one metadata and one linear Alembic history.
"""

import importlib
import importlib.util
from datetime import datetime

from sqlalchemy import JSON, Column, Index, MetaData
from sqlmodel import Field, SQLModel

from gateway.db.columns import UTCDateTime, utcnow

#: Modules that define SQLModel tables. Listed modules that are not installed are skipped, so a table
#: module can land after this one without editing it.
MODEL_MODULES: list[str] = [
    "gateway.db.models",
    "gateway.access.models",
    "gateway.db.insights",
    "gateway.intent.models",
    "gateway.guard_models",
    "gateway.cache_models",
]


class RequestRecord(SQLModel, table=True):
    """One served (or refused) request: what was asked, where it went, what it cost.

    Written in batches by ``RecordWriter``; spend per key or team over a day or month is summed from
    here (``spend_since``), hence the (key_id, created_at) and (team_id, created_at) indexes.
    """

    __tablename__ = "request_records"
    # The composite indexes also serve lookups on key_id or team_id alone (leading column), so those
    # columns get no single-column index: one index fewer to update per insert.
    __table_args__ = (
        Index("ix_request_records_key_id_created_at", "key_id", "created_at"),
        Index("ix_request_records_team_id_created_at", "team_id", "created_at"),
        Index("ix_request_records_client_request_id", "client_request_id"),
    )

    id: str = Field(primary_key=True)
    """Our request id (``x-interlock-request-id``): made by the gateway, unpredictable, never the client's."""
    client_request_id: str | None = None
    """The client's ``x-request-id`` when it sent one: searchable (indexed), not unique (clients repeat ids)."""
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False, index=True))
    """When the request arrived, timezone-aware UTC."""
    key_id: str | None = None
    """The virtual key that called; ``None`` for anonymous calls."""
    team_id: str | None = None
    model: str
    """The public model name the caller asked for."""
    served_model: str | None = None
    """The model that answered, after fallbacks; ``None`` when nothing answered."""
    upstream: str | None = None
    """The deployment name that answered."""
    route: str
    """``chat``, ``completions`` or ``embeddings``."""
    stream: bool = False
    status: int
    """The HTTP status sent to the caller."""
    error_type: str | None = None
    """The OpenAI error ``type`` when the request failed."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float
    """Arrival to last byte."""
    ttft_ms: float | None = None
    """Time to first token (streaming)."""
    tpot_ms: float | None = None
    """Mean time per output token after the first."""
    cost_usd: float = 0.0
    attempts: int = 0
    """Upstream calls made, retries and fallbacks included; 0 when refused before any call."""
    trace_id: str | None = None
    """The request's trace (32 hex digits) when it was traced: opens its spans in the console."""
    prompt_version: str | None = None
    """Fingerprint of the system prompt (12 hex digits), so quality and cost can be compared per prompt version."""
    details: dict | None = Field(default=None, sa_column=Column(JSON(), nullable=True))
    """What the book says to log besides the columns: the configuration version in force, sampling parameters,
    the route decision, guard findings (types only), cache outcome. Never prompt or output text."""


def load_models() -> MetaData:
    """Import every table module that exists and return the shared metadata."""
    for name in MODEL_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # the parent package itself is missing
            found = False
        if found:
            importlib.import_module(name)
    return SQLModel.metadata
