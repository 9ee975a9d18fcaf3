"""Settings sections of the ops console's data: the built-in trace store and the per-minute rollups."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TraceStoreConfig(_Section):
    """The built-in trace store: the recorder process also writes spans to the database (SQLite embedded,
    PostgreSQL in production), so traces need no extra server. Head sampling is
    ``observability.trace_sample_ratio`` (decided when a trace starts); tail sampling is decided here once a
    request's spans have all arrived."""

    enabled: bool = False
    """Store spans in the database. Also gives each pipeline step (authenticate, admit, ...) a child span."""
    keep_ratio: float = Field(0.1, ge=0, le=1)
    """Tail sampling: share of ordinary traces kept. Errors, guard triggers and slow requests are always kept.
    Decided from the trace id, so every service and recorder keeps the same traces."""
    slow_ms: float = Field(2000, ge=0)
    """A request slower than this (its server span) is always kept."""
    trace_wait: float = Field(30, gt=0)
    """Seconds a trace's spans wait for the request's span before they are judged on what arrived."""
    max_age_hours: float = Field(72, gt=0)
    """Retention by age: spans older than this are deleted by the recorder's retention job."""
    max_spans: int = Field(2_000_000, ge=1)
    """Retention by size: beyond this many stored spans, the oldest are deleted."""
    retention_interval: float = Field(60, gt=0)
    """Seconds between runs of the retention job (each recorder runs it; running it twice is harmless)."""


class RollupConfig(_Section):
    """Per-minute rollups of request records, kept by the recorder as it writes them; the console reads only these."""

    enabled: bool = True
    latency_objective_ms: float = Field(10_000, gt=0)
    """Goodput counts successful requests answered within this latency."""
    max_age_days: float = Field(90, gt=0)
    """Rollup rows older than this are deleted by the retention job."""


class MetricLabelsConfig(_Section):
    """Per-tenant labels of the request, latency, token, cost and goodput series (``key``, ``team``,
    ``prompt_version`` beside ``route`` and ``model``), bounded so that many keys, teams or system prompts cannot
    blow up the registry: each label admits its first ``max_*`` values in this process, later ones count as
    ``other``; past ``max_series`` combinations a new one counts as ``other`` on all three. 0 turns a label off
    (its value is then always empty)."""

    max_keys: int = Field(100, ge=0)
    """Key ids with their own series (per gateway process); the rest are ``key="other"``."""
    max_teams: int = Field(50, ge=0)
    max_prompt_versions: int = Field(20, ge=0)
    """System-prompt fingerprints with their own series: clients can vary a system prompt per request."""
    max_series: int = Field(200, ge=1)
    """Label combinations (route, model, key, team, prompt version) at most: each is ~29 lines of /metrics,
    rendered at every scrape, in a thread sharing the GIL with the event loop (at 200: ~5,900 lines, 0.8 MB, ~50 ms
    of CPU)."""
