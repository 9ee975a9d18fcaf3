"""Tables of the ops console: stored spans (the built-in trace store), per-minute rollups, user feedback.

- ``spans``: what the recorder kept after tail sampling (``gateway/recorder/spans_store.py``); one row per span,
  attributes as JSON. Retention by age and by row count is enforced by the recorder's retention job.
- ``rollups``: one row per minute and (key, team, model, route, prompt version), additive counters only, so
  several recorders (one per gateway worker) add into the same row with an upsert. Latency and TTFT are kept as
  histogram buckets (the Prometheus bucket bounds) so percentiles over any range are a sum and an interpolation,
  never a scan of raw records: every console panel reads these rows only.
- ``feedback``: explicit feedback (``POST /v1/feedback``) and implicit signals (regeneration, early termination,
  rephrase, abandonment, refusal), each tied to the request (and trace) it concerns.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Column, Index
from sqlmodel import Field, SQLModel

from gateway.db.columns import UTCDateTime, utcnow

#: Upper bounds (ms) of the latency buckets of a rollup row: ``lat_0`` .. ``lat_14``, and ``lat_15`` above all.
LATENCY_BOUNDS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000, 300000)
#: Upper bounds (ms) of the time-to-first-token buckets: ``ttft_0`` .. ``ttft_11``, and ``ttft_12`` above all.
TTFT_BOUNDS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)
LATENCY_COLUMNS = tuple(f"lat_{i}" for i in range(len(LATENCY_BOUNDS_MS) + 1))
TTFT_COLUMNS = tuple(f"ttft_{i}" for i in range(len(TTFT_BOUNDS_MS) + 1))
#: Feedback kinds counted in rollups and metrics; explicit ones first, then the implicit signals.
FEEDBACK_KINDS = ("positive", "negative", "regeneration", "early_termination", "rephrase", "abandonment", "refusal")
#: Additive counters of a rollup row, in the order the upsert writes them.
COUNTERS = (
    "requests",
    "errors",
    "goodput",
    "latency_sum_ms",
    "ttft_count",
    "ttft_sum_ms",
    "tpot_count",
    "tpot_sum_ms",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "cache_hits",
    "guard_triggers",
    *(f"fb_{k}" for k in FEEDBACK_KINDS),
    *LATENCY_COLUMNS,
    *TTFT_COLUMNS,
)
#: The dimensions of a rollup row; ``""`` stands for "none" (NULLs would defeat the unique key).
DIMENSIONS = ("minute", "key_id", "team_id", "model", "route", "prompt_version")


class SpanRow(SQLModel, table=True):
    """One stored span. Times are Unix nanoseconds as in OTLP (``BIGINT``)."""

    __tablename__ = "spans"
    __table_args__ = (Index("ix_spans_start_ns", "start_ns"),)

    trace_id: str = Field(primary_key=True)
    """32 hex digits."""
    span_id: str = Field(primary_key=True)
    """16 hex digits."""
    parent_id: str | None = None
    request_id: str | None = Field(default=None, index=True)
    """The gateway's request id (``interlock.request_id`` on the request's span): joins spans to records."""
    name: str
    kind: int = 1
    start_ns: int = Field(sa_column=Column(BigInteger(), nullable=False))
    duration_ms: float
    error: str | None = None
    """The status message when the span failed."""
    attributes: dict = Field(default_factory=dict, sa_column=Column(JSON(), nullable=False))


class _RollupColumns(SQLModel):
    """The columns of a rollup row (per minute or per hour): dimensions, then additive counters only."""

    minute: datetime = Field(sa_type=UTCDateTime(), primary_key=True)
    """The start of the minute (or hour) in UTC."""
    key_id: str = Field(default="", primary_key=True)
    team_id: str = Field(default="", primary_key=True)
    model: str = Field(default="", primary_key=True)
    route: str = Field(default="", primary_key=True)
    prompt_version: str = Field(default="", primary_key=True)
    requests: int = 0
    errors: int = 0
    goodput: int = 0
    """Requests that succeeded within their latency objective."""
    latency_sum_ms: float = 0.0
    ttft_count: int = 0
    ttft_sum_ms: float = 0.0
    tpot_count: int = 0
    tpot_sum_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cache_hits: int = 0
    guard_triggers: int = 0
    fb_positive: int = 0
    fb_negative: int = 0
    fb_regeneration: int = 0
    fb_early_termination: int = 0
    fb_rephrase: int = 0
    fb_abandonment: int = 0
    fb_refusal: int = 0
    lat_0: int = 0
    lat_1: int = 0
    lat_2: int = 0
    lat_3: int = 0
    lat_4: int = 0
    lat_5: int = 0
    lat_6: int = 0
    lat_7: int = 0
    lat_8: int = 0
    lat_9: int = 0
    lat_10: int = 0
    lat_11: int = 0
    lat_12: int = 0
    lat_13: int = 0
    lat_14: int = 0
    lat_15: int = 0
    ttft_0: int = 0
    ttft_1: int = 0
    ttft_2: int = 0
    ttft_3: int = 0
    ttft_4: int = 0
    ttft_5: int = 0
    ttft_6: int = 0
    ttft_7: int = 0
    ttft_8: int = 0
    ttft_9: int = 0
    ttft_10: int = 0
    ttft_11: int = 0
    ttft_12: int = 0


class RollupRow(_RollupColumns, table=True):
    """One minute of traffic for one (key, team, model, route, prompt version)."""

    __tablename__ = "rollups"
    # Filtered panels (one key, one model) read only their rows: the unfiltered ones read the total rows.
    __table_args__ = (
        Index("ix_rollups_minute", "minute"),
        Index("ix_rollups_key_id_minute", "key_id", "minute"),
        Index("ix_rollups_model_minute", "model", "minute"),
    )


class HourlyRollupRow(_RollupColumns, table=True):
    """The same counters per hour: panels over long ranges read these, so a week is 168 hours of rows rather
    than 10,080 minutes of them (with five dimensions, minute rows barely compress)."""

    __tablename__ = "rollups_hourly"
    __table_args__ = (
        Index("ix_rollups_hourly_minute", "minute"),
        Index("ix_rollups_hourly_key_id_minute", "key_id", "minute"),
        Index("ix_rollups_hourly_model_minute", "model", "minute"),
    )


class FeedbackRow(SQLModel, table=True):
    """Explicit feedback or an implicit signal about one request."""

    __tablename__ = "feedback"
    __table_args__ = (Index("ix_feedback_created_at", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    request_id: str = Field(index=True)
    trace_id: str | None = None
    key_id: str | None = None
    kind: str
    """One of ``FEEDBACK_KINDS``, or ``rating``/``comment``/``edit`` for explicit feedback without thumbs."""
    source: str = "explicit"
    """``explicit`` (``POST /v1/feedback``) or ``implicit`` (detected by the gateway)."""
    rating: int | None = None
    comment: str | None = None
    edited_output: str | None = None
    related_request_id: str | None = None
    """For a regeneration or rephrase: the request that repeated this one."""


class RequestContent(SQLModel, table=True):
    """A request's prompt and output, stored only for the keys and teams an admin lists in
    ``feedback.store_content_for`` (for preference-data export). Never written otherwise."""

    __tablename__ = "request_content"

    request_id: str = Field(primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    key_id: str | None = None
    messages: list = Field(default_factory=list, sa_column=Column(JSON(), nullable=False))
    output: str | None = None
