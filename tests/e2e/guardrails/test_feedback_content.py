"""Prompts and outputs stored for export (``feedback.store_content_for``) are stored as the PII guard masked
them, never raw: for complete and streamed answers. The emulator echoes the (masked) prompt, so its answer
carries the placeholders, and the client gets the unmasked text."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import orjson
import pytest
import sqlalchemy as sa

from gateway.db.insights import RequestContent
from interlock.emulator import EmulatorServer
from tests.e2e.guardrails.conftest import _running
from tests.support.gateway import model
from tests.support.polling import eventually

MASTER = "sk-il-master-key-for-feedback-masking"
EMAIL = "ana.lima@example.com"


@pytest.fixture(scope="module")
def gw(tmp_path_factory) -> Iterator[tuple[str, str, str]]:
    """A gateway whose model masks PII, storing content for key ``a``: (url, database url, key a)."""
    db = f"sqlite:///{tmp_path_factory.mktemp('fbmask')}/gw.db"
    with EmulatorServer(port=0, served_model_names=["m"]) as replica:
        settings = {
            "database": {"url": db, "flush_interval": 0.1},
            "models": [model("m", replica.url)],
            "access": {"master_key": MASTER, "require_keys": True},
            "guardrails": {
                "enabled": True,
                "policies": {"mask": {"input": {"pii": {"action": "mask"}}}},
                "attach": {"models": {"m": "mask"}},
            },
            "feedback": {"flush_interval": 0.1, "store_content_for": ["a"]},
        }
        with _running(settings) as url:
            headers = {"authorization": f"Bearer {MASTER}"}
            key = httpx.post(url + "/admin/keys", json={"name": "a"}, headers=headers).json()["key"]
            yield url, db, key


def stored(db: str, request_id: str) -> dict | None:
    engine = sa.create_engine(db)
    try:
        t = RequestContent.__table__
        with engine.connect() as c:
            row = c.execute(sa.select(t).where(t.c.request_id == request_id)).first()
            return dict(row._mapping) if row else None
    finally:
        engine.dispose()


@pytest.mark.parametrize("stream", [False, True])
def test_when_the_pii_guard_masks_then_stored_prompts_and_outputs_are_masked(gw, stream):
    url, db, key = gw
    c = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)
    messages = [{"role": "user", "content": f"Write to {EMAIL} today"}]
    r = c.chat.completions.with_raw_response.create(model="m", messages=messages, max_tokens=16, stream=stream)
    if stream:
        answer = "".join(ch.choices[0].delta.content or "" for ch in r.parse() if ch.choices)
    else:
        answer = r.parse().choices[0].message.content
    assert EMAIL in answer  # the client gets its own text back, unmasked
    row = eventually(lambda: stored(db, r.headers["x-interlock-request-id"]), timeout=10)
    assert EMAIL not in orjson.dumps(row["messages"]).decode() and EMAIL not in row["output"]
    assert "[EMAIL_ADDRESS_1]" in row["messages"][0]["content"] and "[EMAIL_ADDRESS_1]" in row["output"]
