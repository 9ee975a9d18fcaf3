"""A record's key is ours and unpredictable; the client's ``x-request-id`` is only a searchable column.

Nothing a client sends can remove or overwrite another request's record: not repeating an id, not sending the
ids it expects the gateway to hand out next, not sending the id of a request already recorded.
"""

from __future__ import annotations

import re

import httpx

from tests.e2e.gateway.conftest import stored_records
from tests.support.gateway import model, running_gateway

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
OURS = re.compile(r"^[0-9a-f]{32}$")


def start(fresh, database_url):
    return running_gateway(models=[model("m", fresh[0].url)], database={"url": database_url, "flush_interval": 0.1})


def test_when_a_client_repeats_its_request_id_then_every_request_is_a_row(fresh, database_url):
    with start(fresh, database_url) as (url, _app):
        sent = [
            httpx.post(url + "/v1/chat/completions", json=BODY, headers={"x-request-id": "retry-me"}) for _ in range(3)
        ]
    ours = [r.headers["x-interlock-request-id"] for r in sent]
    assert [r.status_code for r in sent] == [200] * 3
    assert [r.headers["x-request-id"] for r in sent] == ["retry-me"] * 3  # the client's id is echoed
    assert len(set(ours)) == 3 and all(OURS.match(i) for i in ours)
    found = rows(database_url, 3)
    assert sorted(found) == sorted(ours)
    assert [found[i]["client_request_id"] for i in ours] == ["retry-me"] * 3
    # The upstream sees the client's id, so the client's traces and the upstream's logs join.
    assert [r["headers"]["x-request-id"] for r in fresh[0].recorded_requests()[-3:]] == ["retry-me"] * 3


def test_when_a_client_sends_ids_the_gateway_hands_out_then_no_other_request_loses_its_row(fresh, database_url):
    with start(fresh, database_url) as (url, _app):
        chat = url + "/v1/chat/completions"
        first = httpx.post(chat, json=BODY)
        mine = first.headers["x-interlock-request-id"]
        # An attacker guesses the next ids as a per-process prefix plus a counter would make them, sends them
        # first, and also replays the id of a request already recorded.
        prefix, counter = mine[:20], int(mine[20:], 16)
        guesses = [f"{prefix}{counter + k:012x}" for k in range(1, 21)] + [mine]
        attacks = [httpx.post(chat, json=BODY, headers={"x-request-id": g}) for g in guesses]
        victims = [httpx.post(chat, json=BODY) for _ in range(20)]
    assert all(r.status_code == 200 for r in [first, *attacks, *victims])
    found = rows(database_url, 1 + len(attacks) + len(victims))
    assert len(found) == 1 + len(attacks) + len(victims)
    for r in victims:
        row = found[r.headers["x-interlock-request-id"]]
        assert row["client_request_id"] is None and row["status"] == 200
    # The record the attacker named is untouched; its id only shows up as a client id.
    assert found[mine]["client_request_id"] is None
    assert sorted(r["client_request_id"] for r in found.values() if r["client_request_id"]) == sorted(guesses)


def rows(url: str, expected: int) -> dict[str, dict]:
    """Every record by id."""
    return {r["id"]: r for r in stored_records(url, expected)}
