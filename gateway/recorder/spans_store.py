"""The built-in trace store, in the recorder process: spans to the database, tail-sampled, with retention.

The gateway hands its recorder OTLP/JSON-encoded spans (the same bytes it would post to a collector). Here they
are parsed, grouped by trace and held until the request's own span (the SERVER span, which ends last) arrives;
then the whole trace is kept or dropped at once:

- kept always: a span with an error status, a guard that acted (``interlock.guardrails.action`` other than
  ``allow``, or ``interlock.guard.triggered``, on any span),
  a request answered with status >= 400, a request slower than ``slow_ms``;
- otherwise kept when the trace id falls in ``keep_ratio``: a function of the id alone, so two services (or two
  recorders) that see parts of one trace keep the same traces.

Spans that never see their request span (a trace continued from another service that is still running) are
judged on what arrived after ``trace_wait`` seconds. ``retention`` deletes spans older than ``max_age_hours``
and the oldest beyond ``max_spans``. Everything here blocks: it runs in the recorder's loop thread, at idle
priority, never in the gateway.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gateway.db._insert import describe
from gateway.db.insights import SpanRow

log = logging.getLogger("interlock.recorder")

SERVER = 2
ERROR = 2  # OTLP status code
#: Pending traces held at most: beyond it the oldest are judged early (memory stays bounded).
MAX_PENDING = 20_000
_BATCH = 1000


def _value(v: dict) -> Any:
    for k in ("stringValue", "boolValue", "doubleValue"):
        if k in v:
            return v[k]
    if "intValue" in v:
        return int(v["intValue"])
    return None


def parse_block(block: bytes) -> list[dict[str, Any]]:
    """Comma-separated OTLP/JSON spans -> rows of ``spans`` (attributes flattened to a dict)."""
    rows = []
    for s in orjson.loads(b"[" + block + b"]"):
        start, end = int(s["startTimeUnixNano"]), int(s["endTimeUnixNano"])
        status = s.get("status") or {}
        rows.append(
            {
                "trace_id": s["traceId"],
                "span_id": s["spanId"],
                "parent_id": s.get("parentSpanId") or None,
                "request_id": None,
                "name": s["name"],
                "kind": int(s.get("kind", 1)),
                "start_ns": start,
                "duration_ms": (end - start) / 1e6,
                "error": (status.get("message") or "error") if status.get("code") == ERROR else None,
                "attributes": {a["key"]: _value(a["value"]) for a in s.get("attributes", ())},
            }
        )
    return rows


def sampled(trace_id: str, ratio: float) -> bool:
    """Deterministic in the trace id (its low 64 bits, random per W3C), so every service agrees."""
    return int(trace_id[-16:], 16) < ratio * 2**64


class SpanStore:
    """Tail-samples spans by trace and writes the kept ones; see the module docstring.
    ``add_block`` may be called from any thread; ``tick``, ``retention`` and ``close`` from one.

    With ``max_bytes``, ``add_block`` waits while that many bytes of blocks wait to be parsed: the caller is the
    recorder's span reader, so the backlog stays in the gateway's pipe and the gateway sheds traces
    (``process.py``), as for the OTLP export queue. Without it a slow database let the queue grow without end."""

    def __init__(
        self, engine: Engine, config: dict[str, Any], *, clock=time.time, max_bytes: int | None = None
    ) -> None:
        self.engine = engine
        self.keep_ratio = float(config.get("keep_ratio", 0.1))
        self.slow_ms = float(config.get("slow_ms", 2000))
        self.trace_wait = float(config.get("trace_wait", 30))
        self.max_age_s = float(config.get("max_age_hours", 72)) * 3600
        self.max_spans = int(config.get("max_spans", 2_000_000))
        self.retention_interval = float(config.get("retention_interval", 60))
        self._clock = clock
        self._blocks: deque[bytes] = deque()
        self._max_bytes = max_bytes
        # One writer each (the reader adds, the loop thread takes), so no read-modify-write race between them.
        self._added_bytes = self._taken_bytes = 0
        self._room = threading.Event()
        self._closed = False
        self._pending: dict[str, tuple[float, list[dict]]] = {}
        self._next_retention = 0.0
        self._insert = _insert_for(engine)
        #: Spans stored, spans dropped by sampling, spans deleted by retention, failed writes.
        self.stored = self.sampled_out = self.expired = self.errors = 0

    def add_block(self, block: bytes) -> None:
        limit = self._max_bytes
        while limit is not None and self._added_bytes - self._taken_bytes >= limit and not self._closed:
            self._room.clear()
            if self._added_bytes - self._taken_bytes < limit:  # the loop thread took blocks meanwhile
                break
            self._room.wait(0.5)
        self._added_bytes += len(block)
        self._blocks.append(block)  # deque.append is atomic: the span reader thread calls this

    def tick(self) -> None:
        """Parse what arrived, judge finished traces, write kept spans, and run retention when due."""
        now = self._clock()
        # Only what is queued now (the reader refills the queue as it empties), and finished traces judged and
        # written block by block: parsed rows are several times the size of their bytes.
        for _ in range(len(self._blocks)):
            block = self._blocks.popleft()
            self._taken_bytes += len(block)
            self._room.set()
            try:
                rows = parse_block(block)
            except (ValueError, KeyError, TypeError):
                log.warning("trace store: an unreadable span block was skipped")
                continue
            finished: list[list[dict]] = []
            for row in rows:
                entry = self._pending.get(row["trace_id"])
                if entry is None:
                    entry = self._pending[row["trace_id"]] = (now, [])
                entry[1].append(row)
                if row["kind"] == SERVER and "interlock.request_id" in row["attributes"]:  # the request's own span
                    finished.append(self._pending.pop(row["trace_id"])[1])
            self._write([row for spans in finished for row in self._judge(spans)])
        stale = [t for t, (seen, _) in self._pending.items() if now - seen >= self.trace_wait]
        excess = len(self._pending) - len(stale) - MAX_PENDING
        if excess > 0:
            stale += [t for t in list(self._pending)[:excess] if t not in stale]
        self._write([row for t in stale for row in self._judge(self._pending.pop(t)[1])])
        if now >= self._next_retention:
            self._next_retention = now + self.retention_interval
            self.retention(now)

    def close(self) -> None:
        """Judge and write everything still pending (the recorder is ending)."""
        self.trace_wait = 0.0
        self._next_retention = float("inf")
        self._closed = True
        self._room.set()
        self.tick()

    def _judge(self, spans: list[dict]) -> list[dict]:
        request_id = next((s["attributes"].get("interlock.request_id") for s in spans if s["kind"] == SERVER), None)
        if request_id is not None:
            for s in spans:
                s["request_id"] = request_id
        if any(self._interesting(s) for s in spans) or sampled(spans[0]["trace_id"], self.keep_ratio):
            return spans
        self.sampled_out += len(spans)
        return []

    def _interesting(self, s: dict) -> bool:
        a = s["attributes"]
        if s["error"] is not None or a.get("interlock.guard.triggered"):
            return True
        if a.get("interlock.guardrails.action") not in (None, "allow"):  # gateway/guarding.py: masked, blocked...
            return True
        if s["kind"] == SERVER:
            status = a.get("http.response.status_code")
            return (isinstance(status, int) and status >= 400) or s["duration_ms"] >= self.slow_ms
        return False

    def _write(self, rows: list[dict]) -> None:
        for i in range(0, len(rows), _BATCH):
            try:
                with self.engine.begin() as conn:
                    conn.execute(self._insert, rows[i : i + _BATCH])
                self.stored += len(rows[i : i + _BATCH])
            except sa.exc.SQLAlchemyError as exc:  # traces are best effort: never hold the recorder up
                self.errors += 1
                log.warning("trace store: %d spans not written (%s)", len(rows[i : i + _BATCH]), describe(exc))

    def retention(self, now: float | None = None) -> int:
        """Delete spans past ``max_age_hours``, then the oldest beyond ``max_spans``; returns how many went."""
        now = self._clock() if now is None else now
        t = SpanRow.__table__
        deleted = 0
        try:
            with self.engine.begin() as conn:
                cutoff = int((now - self.max_age_s) * 1e9)
                deleted += conn.execute(sa.delete(t).where(t.c.start_ns < cutoff)).rowcount or 0
                count = conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                if count > self.max_spans:
                    # The start of the oldest span to keep: everything before it goes (ties may keep a few more).
                    keep_from = conn.execute(
                        sa.select(t.c.start_ns).order_by(t.c.start_ns).offset(count - self.max_spans).limit(1)
                    ).scalar_one()
                    deleted += conn.execute(sa.delete(t).where(t.c.start_ns < keep_from)).rowcount or 0
        except sa.exc.SQLAlchemyError as exc:
            self.errors += 1
            log.warning("trace store: retention failed (%s)", describe(exc))
        self.expired += deleted
        return deleted


def _insert_for(engine: Engine):
    table = SpanRow.__table__
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).on_conflict_do_nothing(index_elements=["trace_id", "span_id"])
