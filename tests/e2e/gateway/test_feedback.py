"""User feedback end to end: POST /v1/feedback (explicit) and the implicit signals read from real request
sequences, stored with the request, counted in rollups and metrics."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import openai
import orjson
import pytest
import sqlalchemy as sa

from gateway.db.insights import FeedbackRow
from interlock.emulator import EmulatorServer
from tests.support.gateway import model, running_gateway
from tests.support.polling import eventually

MASTER = "sk-il-master-key-for-feedback-tests"
ADMIN = {"authorization": f"Bearer {MASTER}"}


@pytest.fixture(scope="module")
def worker() -> Iterator[EmulatorServer]:
    with EmulatorServer(port=0, served_model_names=["m"], tpot_ms=30, output_tokens=40) as w:
        yield w


@pytest.fixture(scope="module")
def gw(worker, tmp_path_factory) -> Iterator[tuple[str, str, dict[str, str]]]:
    """A gateway with keys required and implicit feedback on; two keys, ``a`` and ``b``."""
    db = f"sqlite:///{tmp_path_factory.mktemp('feedback')}/fb.db"
    settings = {
        "models": [model("m", worker.url)],
        "database": {"url": db, "flush_interval": 0.1},
        "access": {"master_key": MASTER, "require_keys": True},
        "feedback": {"implicit": True, "abandon_after": 1.0, "flush_interval": 0.1, "store_content_for": ["a"]},
    }
    with running_gateway(**settings) as (url, _):
        keys = {n: httpx.post(url + "/admin/keys", json={"name": n}, headers=ADMIN).json()["key"] for n in "ab"}
        yield url, db, keys


def chat(url: str, key: str, messages: list[dict], **kw) -> tuple[str, str]:
    """One chat request; returns (our request id, the answer's text)."""
    c = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)
    r = c.chat.completions.with_raw_response.create(model="m", messages=messages, max_tokens=8, **kw)
    return r.headers["x-interlock-request-id"], r.parse().choices[0].message.content


def feedback_rows(db: str, request_id: str) -> list[dict]:
    engine = sa.create_engine(db)
    try:
        t = FeedbackRow.__table__
        with engine.connect() as c:
            return [dict(r._mapping) for r in c.execute(sa.select(t).where(t.c.request_id == request_id))]
    finally:
        engine.dispose()


def kinds(db: str, request_id: str, expected: int = 1) -> list[str]:
    rows = eventually(lambda: len(r := feedback_rows(db, request_id)) >= expected and r, timeout=10) or []
    return sorted(r["kind"] for r in rows)


def post(url: str, key: str, body) -> httpx.Response:
    return httpx.post(url + "/v1/feedback", json=body, headers={"authorization": f"Bearer {key}"})


# -- explicit -----------------------------------------------------------------------------------------------


def test_when_a_key_rates_its_own_request_then_the_feedback_is_stored_with_it(gw):
    url, db, keys = gw
    rid, _ = chat(url, keys["a"], [{"role": "user", "content": "rate me"}])
    r = post(url, keys["a"], {"request_id": rid, "thumbs": "up", "rating": 5, "comment": "great"})
    assert r.status_code == 200 and r.json()["kind"] == "positive"
    (row,) = feedback_rows(db, rid)
    assert (row["source"], row["rating"], row["comment"]) == ("explicit", 5, "great")
    summary = httpx.get(url + "/admin/console/summary", headers=ADMIN).json()
    assert summary["feedback"]["positive"] >= 1
    metrics = [line for line in httpx.get(url + "/metrics").text.splitlines() if "feedback" in line]
    assert 'interlock_feedback_total{kind="positive",model="m",prompt_version="",route="chat"} 1.0' in metrics


def test_when_feedback_comes_before_the_record_is_written_then_it_is_stored_with_the_requests_dimensions(
    worker, tmp_path
):
    # Records are written every 60 s here: the feedback can only find its request in the gateway's memory of
    # the requests it just answered (their dimensions, not whole records).
    db = f"sqlite:///{tmp_path}/slow.db"
    settings = {
        "models": [model("m", worker.url)],
        "database": {"url": db, "flush_interval": 60},
        "access": {"master_key": MASTER, "require_keys": True},
    }
    with running_gateway(**settings) as (url, _):
        key = httpx.post(url + "/admin/keys", json={"name": "early"}, headers=ADMIN).json()["key"]
        rid, _ = chat(url, key, [{"role": "user", "content": "rate me at once"}])
        r = post(url, key, {"request_id": rid, "thumbs": "down"})
        assert r.status_code == 200 and r.json()["kind"] == "negative"
        (row,) = feedback_rows(db, rid)
        assert row["source"] == "explicit" and row["key_id"]
        other = httpx.post(url + "/admin/keys", json={"name": "other"}, headers=ADMIN).json()["key"]
        assert post(url, other, {"request_id": rid, "thumbs": "up"}).status_code == 404


def test_when_another_keys_request_or_an_unknown_id_is_rated_then_both_get_the_same_404(gw):
    url, _, keys = gw
    rid, _ = chat(url, keys["a"], [{"role": "user", "content": "mine"}])
    theirs = post(url, keys["b"], {"request_id": rid, "thumbs": "down"})
    unknown = post(url, keys["b"], {"request_id": "0" * 32, "thumbs": "down"})
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json() == unknown.json()


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"thumbs": "up"}, "request_id"),
        ({"request_id": "x", "thumbs": "sideways"}, "thumbs"),
        ({"request_id": "x", "rating": 7}, "rating"),
        ({"request_id": "x", "comment": 3}, "comment"),
        ({"request_id": "x", "stars": 5}, "stars"),
        ({"request_id": "x"}, "thumbs"),
    ],
)
def test_when_the_feedback_body_is_malformed_then_the_400_names_the_field(gw, body, param):
    url, _, keys = gw
    r = post(url, keys["a"], body)
    assert r.status_code == 400 and r.json()["error"]["param"] == param


def test_when_no_key_is_sent_then_feedback_is_401(gw):
    assert httpx.post(gw[0] + "/v1/feedback", json={"request_id": "x", "thumbs": "up"}).status_code == 401


# -- implicit -----------------------------------------------------------------------------------------------


def test_when_the_same_conversation_is_sent_again_then_the_first_request_gets_a_regeneration(gw):
    url, db, keys = gw
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."}]
    first, _ = chat(url, keys["a"], messages)
    second, _ = chat(url, keys["a"], messages)
    assert kinds(db, first) == ["regeneration"]
    assert feedback_rows(db, first)[0]["related_request_id"] == second
    assert {r["kind"] for r in feedback_rows(db, second)} <= {"abandonment"}  # the retry itself may be abandoned


def test_when_the_next_turn_starts_with_a_correction_then_the_previous_answer_gets_a_rephrase(gw):
    url, db, keys = gw
    question = [{"role": "user", "content": "What is the capital of Australia?"}]
    first, answer = chat(url, keys["a"], question)
    follow = [*question, {"role": "assistant", "content": answer}, {"role": "user", "content": "No, I meant Austria."}]
    chat(url, keys["a"], follow)
    assert kinds(db, first) == ["rephrase"]


def test_when_the_last_question_is_edited_and_resent_then_the_first_request_gets_a_rephrase(gw):
    url, db, keys = gw
    first, _ = chat(url, keys["a"], [{"role": "user", "content": "How tall is the Eiffel Tower?"}])
    chat(url, keys["a"], [{"role": "user", "content": "How tall is the Eiffel tower, in metres?"}])
    assert kinds(db, first) == ["rephrase"]


def test_when_a_different_next_question_follows_then_no_signal_is_recorded(gw):
    url, db, keys = gw
    question = [{"role": "user", "content": "Give me a pasta recipe."}]
    first, answer = chat(url, keys["b"], question)
    chat(url, keys["b"], [*question, {"role": "assistant", "content": answer},
                          {"role": "user", "content": "Thanks! Which wine goes with it?"}])  # fmt: skip
    time.sleep(1.5)  # past abandon_after: a conversation that went well is not abandoned either
    assert feedback_rows(db, first) == []


def test_when_the_client_leaves_a_stream_early_then_it_is_an_early_termination(gw):
    url, db, keys = gw
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "count slowly " * 5}]}
    headers = {"authorization": f"Bearer {keys['a']}"}
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, headers=headers) as r:
        rid = r.headers["x-interlock-request-id"]
        next(r.iter_lines())  # the first token arrived; then the user closes the tab
    assert "early_termination" in kinds(db, rid)


def test_when_the_model_refuses_then_a_refusal_and_later_an_abandonment_are_recorded(gw):
    url, db, keys = gw
    # The emulator echoes the user's words: this makes the "model" answer with a refusal.
    rid, text = chat(url, keys["b"], [{"role": "user", "content": "I'm sorry, but I can't help with that."}])
    assert text.strip().startswith("I'm sorry")
    assert kinds(db, rid, expected=2) == ["abandonment", "refusal"]  # no next turn within abandon_after


def stream_chat(url: str, key: str, messages: list[dict]) -> tuple[str, str]:
    """One streamed chat request read to its end; returns (our request id, the text the client assembled)."""
    c = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)
    r = c.chat.completions.with_raw_response.create(model="m", messages=messages, max_tokens=8, stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in r.parse() if chunk.choices)
    return r.headers["x-interlock-request-id"], text


def test_when_a_streamed_answer_refuses_then_a_refusal_is_recorded(gw):
    url, db, keys = gw
    rid, text = stream_chat(url, keys["b"], [{"role": "user", "content": "I'm sorry, but I can't help with that."}])
    assert text.strip().startswith("I'm sorry")
    assert "refusal" in kinds(db, rid)


def test_when_a_streamed_answer_is_edited_then_the_export_pairs_the_streamed_text(gw, tmp_path):
    from click.testing import CliRunner

    from interlock.cli import main

    url, db, keys = gw
    messages = [{"role": "user", "content": "Write a limerick about a streamed cat."}]
    rid, streamed = stream_chat(url, keys["a"], messages)
    assert post(url, keys["a"], {"request_id": rid, "edited_output": "A cat that was streamed"}).status_code == 200
    out = tmp_path / "pairs.jsonl"

    def exported() -> dict | None:
        result = CliRunner().invoke(main, ["feedback", "export", "--database-url", db, "--out", str(out)])
        assert result.exit_code == 0, result.output
        pairs = [orjson.loads(line) for line in out.read_bytes().splitlines()]
        return next((p for p in pairs if p["chosen"] == "A cat that was streamed"), None)

    pair = eventually(exported, timeout=10)
    assert (pair["prompt"], pair["rejected"]) == (messages, streamed)


def test_when_metrics_are_scraped_then_implicit_signals_are_counted_by_model_and_route(gw):
    url, _, keys = gw
    messages = [{"role": "user", "content": "Once more please."}]
    chat(url, keys["a"], messages)
    chat(url, keys["a"], messages)
    text = eventually(lambda: (t := httpx.get(url + "/metrics").text) and 'kind="regeneration"' in t and t)
    assert 'interlock_feedback_total{kind="regeneration",model="m",prompt_version="",route="chat"}' in text


# -- export -------------------------------------------------------------------------------------------------


def test_when_feedback_is_exported_then_edits_and_rated_regenerations_become_preference_pairs(gw, tmp_path):
    from click.testing import CliRunner

    from interlock.cli import main

    url, db, keys = gw
    edited, answer = chat(url, keys["a"], [{"role": "user", "content": "Write a haiku about rain."}])
    assert post(url, keys["a"], {"request_id": edited, "edited_output": "Soft rain on the roof"}).status_code == 200
    messages = [{"role": "user", "content": "Suggest a name for a cat."}]
    rejected, first_text = chat(url, keys["a"], messages, seed=1)
    chosen, second_text = chat(url, keys["a"], messages, seed=2)  # regenerated, and this one is liked
    assert kinds(db, rejected) == ["regeneration"]
    assert post(url, keys["a"], {"request_id": chosen, "thumbs": "up"}).status_code == 200
    chat(url, keys["b"], [{"role": "user", "content": "not stored"}])  # key b's content is never stored
    out = tmp_path / "pairs.jsonl"
    result = CliRunner().invoke(main, ["feedback", "export", "--database-url", db, "--out", str(out)])
    assert result.exit_code == 0, result.output
    pairs = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    by_source = {p["source"]: p for p in pairs}
    assert by_source["edited_output"]["chosen"] == "Soft rain on the roof"
    assert by_source["edited_output"]["rejected"] == answer
    assert by_source["edited_output"]["prompt"] == [{"role": "user", "content": "Write a haiku about rain."}]
    assert (by_source["regeneration"]["chosen"], by_source["regeneration"]["rejected"]) == (second_text, first_text)
    assert all("not stored" not in orjson.dumps(p).decode() for p in pairs)
