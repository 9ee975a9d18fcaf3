"""The built-in trace store (gateway/recorder/spans_store.py): tail sampling and retention, SQLite and PostgreSQL."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from gateway.db.insights import SpanRow
from gateway.recorder.spans_store import SpanStore
from observability._export import encode_span
from observability.tracing import CLIENT, SERVER, Span, step_span


@pytest.fixture
def store_engine(engine):
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM spans"))
    return engine


def request_trace(request_id: str, *, status: int = 200, error: bool = False, guard: bool = False, ms: float = 5):
    """The spans of one request as the gateway encodes them: request span, a step span, an upstream span."""
    ended: list[Span] = []
    root = Span("chat m", SERVER, int(time.time_ns()) << 16 | hash(request_id) & 0xFFFF, None, {}, ended.append)
    root.attributes["interlock.request_id"] = request_id
    step = step_span(root, "interlock.step authenticate")
    step.end()
    call = Span("chat m", CLIENT, root.trace_id, root.span_id, {}, ended.append)
    if error:
        call.set_error("upstream_error", "HTTP 500")
    if guard:
        call.attributes["interlock.guard.triggered"] = True
    call.end()
    root.attributes["http.response.status_code"] = status
    root.end()
    root.end_ns = root.start_ns + int(ms * 1e6)
    return b",".join(encode_span(s) for s in ended), f"{root.trace_id:032x}"


def stored(engine) -> list[dict]:
    with engine.connect() as conn:
        t = SpanRow.__table__
        return [dict(r._mapping) for r in conn.execute(sa.select(t).order_by(t.c.start_ns))]


def test_when_keep_ratio_is_zero_then_only_errors_guard_triggers_and_slow_requests_are_kept(store_engine):
    store = SpanStore(store_engine, {"keep_ratio": 0.0, "slow_ms": 1000})
    for rid, kw in [("ok", {}), ("err", {"error": True}), ("guard", {"guard": True}), ("slow", {"ms": 1500}),
                    ("refused", {"status": 429})]:  # fmt: skip
        store.add_block(request_trace(rid, **kw)[0])
    store.tick()
    kept = {r["request_id"] for r in stored(store_engine)}
    assert kept == {"err", "guard", "slow", "refused"}
    assert store.sampled_out == 3  # the three spans of "ok"


def test_when_keep_ratio_is_one_then_every_span_is_stored_with_its_request_id(store_engine):
    store = SpanStore(store_engine, {"keep_ratio": 1.0})
    block, trace_id = request_trace("r1")
    store.add_block(block)
    store.tick()
    rows = stored(store_engine)
    assert {r["name"] for r in rows} == {"chat m", "interlock.step authenticate"}
    assert len(rows) == 3 and {r["trace_id"] for r in rows} == {trace_id} and {r["request_id"] for r in rows} == {"r1"}
    root = next(r for r in rows if r["parent_id"] is None)
    assert root["attributes"]["http.response.status_code"] == 200


def test_when_the_request_span_never_arrives_then_the_spans_are_judged_after_trace_wait(store_engine):
    now = [1000.0]
    store = SpanStore(store_engine, {"keep_ratio": 1.0, "trace_wait": 30}, clock=lambda: now[0])
    parent = Span("remote", SERVER, 7 << 64 | 9, 5, {}, lambda s: None)
    child = step_span(parent, "interlock.step admit")
    child.end()
    store.add_block(encode_span(child))
    store.tick()
    assert stored(store_engine) == []
    now[0] += 31
    store.tick()
    assert [r["name"] for r in stored(store_engine)] == ["interlock.step admit"]


def test_when_the_same_trace_is_judged_by_several_recorders_then_they_all_decide_alike(store_engine):
    block, _ = request_trace("y")
    outcomes = set()
    for _ in range(3):
        store = SpanStore(store_engine, {"keep_ratio": 0.5})
        store.add_block(block)
        store.tick()
        outcomes.add(store.sampled_out)
    assert len(outcomes) == 1


def test_when_spans_are_older_than_max_age_then_retention_deletes_them(store_engine):
    store = SpanStore(store_engine, {"keep_ratio": 1.0, "max_age_hours": 1})
    store.add_block(request_trace("new")[0])
    store.tick()
    with store_engine.begin() as conn:
        old = int((time.time() - 7200) * 1e9)
        conn.execute(
            sa.text("INSERT INTO spans (trace_id, span_id, name, kind, start_ns, duration_ms, attributes) "
                    "VALUES ('t-old', 's1', 'old', 1, :ns, 1.0, '{}')"), {"ns": old})  # fmt: skip
    assert store.retention() == 1
    assert {r["request_id"] for r in stored(store_engine)} == {"new"}


def test_when_there_are_more_spans_than_max_spans_then_retention_keeps_the_newest(store_engine):
    store = SpanStore(store_engine, {"keep_ratio": 1.0, "max_spans": 6})
    for rid in ("a", "b", "c", "d"):
        store.add_block(request_trace(rid)[0])
        store.tick()
        time.sleep(0.002)
    assert len(stored(store_engine)) == 12  # the job ran on the first tick only (3 spans then)
    store.add_block(request_trace("e")[0])
    store.tick()
    assert store.retention() == 9
    assert {r["request_id"] for r in stored(store_engine)} == {"d", "e"}
