"""Retries, timeouts, health ejection, circuit breaking, fallbacks, broken streams and client disconnects.
Each test sets up a failure the emulator injects and checks what the client and the replicas saw."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from interlock.emulator import EmulatorServer
from tests.e2e.gateway.conftest import client, served
from tests.support.gateway import model
from tests.support.polling import eventually as wait_until
from tests.support.servers import free_port

MSG = [{"role": "user", "content": "hello"}]


@pytest.mark.parametrize("fault", ["status:503", "status:500", "reset", "garbage", "status:429:0"])
def test_when_one_try_fails_then_the_request_is_retried_and_succeeds(fresh, gateway, fault):
    url, _ = gateway(models=[model("m", fresh[0].url)])
    fresh[0].script_faults(fault, 1)
    raw = client(url).chat.completions.with_raw_response.create(model="m", messages=MSG)
    assert raw.parse().choices[0].message.content
    assert served(fresh)[0] == 2


def test_when_a_replica_fails_then_the_retry_goes_to_another_replica_at_once(fresh, gateway):
    url, _ = gateway(models=[model("m", fresh[0].url, fresh[1].url, routing="least_outstanding")])
    fresh[1].script_faults("status:503", 5)
    # d1 fails; whichever replica is picked first, every request ends on d0, with no backoff wait in between.
    for _ in range(4):
        raw = client(url).chat.completions.with_raw_response.create(model="m", messages=MSG)
        assert raw.headers["x-interlock-upstream"] == "d0"
    assert served(fresh)[1] >= 1


def test_when_every_try_fails_then_the_last_error_is_returned(fresh, gateway):
    url, _ = gateway(
        models=[model("m", fresh[0].url)],
        retries={"attempts": 3, "backoff_base": 0.01},
        health={"interval": 60, "failure_threshold": 10, "cooldown": 1},
    )
    fresh[0].script_faults("status:503", 10)
    with pytest.raises(openai.InternalServerError) as err:
        client(url).chat.completions.create(model="m", messages=MSG)
    assert err.value.status_code == 503
    assert served(fresh)[0] == 3


def test_when_the_upstream_says_retry_after_then_the_gateway_waits_that_long(fresh, gateway):
    url, _ = gateway(models=[model("m", fresh[0].url)], retries={"attempts": 2, "retry_after_max": 5})
    fresh[0].script_faults("status:429:1", 1)
    start = time.monotonic()
    client(url).chat.completions.create(model="m", messages=MSG)
    waited = time.monotonic() - start
    assert waited >= 0.95  # behaviour, not speed: it must not retry before the upstream allowed it
    assert served(fresh)[0] == 2


def test_when_the_upstream_hangs_then_the_total_timeout_gives_a_504(fresh, gateway):
    url, _ = gateway(models=[model("m", fresh[0].url)], timeouts={"total": 0.5}, retries={"attempts": 1})
    fresh[0].script_faults("hang", 1)
    with pytest.raises(openai.APIStatusError) as err:
        client(url).chat.completions.create(model="m", messages=MSG)
    assert err.value.status_code == 504


def test_when_a_deployment_refuses_connections_then_traffic_goes_to_the_live_one(fresh, gateway):
    dead = f"http://127.0.0.1:{free_port()}"
    url, _ = gateway(models=[model("m", dead, fresh[0].url, routing="least_outstanding")])
    c = client(url)
    for _ in range(6):
        raw = c.chat.completions.with_raw_response.create(model="m", messages=MSG)
        assert raw.headers["x-interlock-upstream"] == "d1"


def test_when_health_checks_fail_then_the_replica_is_ejected_until_it_recovers(fresh, gateway):
    url, _ = gateway(models=[model("m", fresh[0].url, fresh[1].url, routing="least_outstanding")])
    fresh[0].set_healthy(False)
    assert wait_until(lambda: httpx.get(url + "/ready").json()["models"]["m"] == 1)
    c = client(url)
    for _ in range(6):
        c.chat.completions.create(model="m", messages=MSG)
    assert served(fresh)[:2] == [0, 6]
    fresh[0].set_healthy(True)
    assert wait_until(lambda: httpx.get(url + "/ready").json()["models"]["m"] == 2)
    for _ in range(6):
        c.chat.completions.create(model="m", messages=MSG)
    assert served(fresh)[0] > 0


def test_when_a_replica_keeps_failing_then_its_circuit_opens_and_it_gets_no_traffic(fresh, gateway):
    url, _ = gateway(
        models=[model("m", fresh[0].url, fresh[1].url, routing="least_outstanding")],
        health={"interval": 60, "failure_threshold": 2, "cooldown": 60},
    )
    fresh[0].script_faults("status:500", 100)
    c = client(url)
    for _ in range(10):
        c.chat.completions.create(model="m", messages=MSG)
    # d0 failed twice, then was ejected: the other 10 answers came from d1.
    assert served(fresh)[:2] == [2, 10]
    assert httpx.get(url + "/ready").json()["models"]["m"] == 1


def test_when_a_model_fails_everywhere_then_the_fallback_model_answers(fresh, gateway):
    url, _ = gateway(
        models=[model("m", fresh[0].url, fallbacks=["backup"]), model("backup", fresh[1].url, upstream_model="m")]
    )
    fresh[0].script_faults("status:503", 10)
    raw = client(url).chat.completions.with_raw_response.create(model="m", messages=MSG)
    assert raw.headers["x-interlock-model"] == "backup"
    assert served(fresh)[1] == 1


def test_when_a_stream_breaks_before_the_first_token_then_it_is_retried_transparently(fresh, gateway):
    url, _ = gateway(models=[model("m", fresh[0].url)])
    fresh[0].script_faults("cut:0", 1)
    chunks = list(client(url).chat.completions.create(model="m", messages=MSG, stream=True, max_tokens=5))
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == 5
    assert served(fresh)[0] == 2


def test_when_a_stream_breaks_after_tokens_then_the_client_gets_an_error_not_a_silent_end(fresh, gateway):
    url, _ = gateway(models=[model("m", fresh[0].url)])
    fresh[0].script_faults("cut:3", 1)
    got = []
    with pytest.raises(openai.APIError) as err:
        for c in client(url).chat.completions.create(model="m", messages=MSG, stream=True, max_tokens=10):
            got.append(c)
    assert got and "broke off" in str(err.value)
    assert served(fresh)[0] == 1  # tokens had reached the client: no silent retry


def test_when_the_client_disconnects_mid_stream_then_the_upstream_request_is_cancelled(gateway):
    with EmulatorServer(port=0, served_model_names=["m"], tpot_ms=50, mode="thread") as slow:
        url, _ = gateway(models=[model("m", slow.url)])
        body = {"model": "m", "messages": MSG, "stream": True, "max_tokens": 200}
        with httpx.Client(timeout=10) as h, h.stream("POST", url + "/v1/chat/completions", json=body) as r:
            next(r.iter_raw())
        assert wait_until(lambda: slow.stats()["cancelled"] == 1, 5)
        assert slow.stats()["generation_tokens"] < 100  # generation stopped, it did not run to 200


def test_when_the_client_gives_up_on_a_slow_answer_then_the_upstream_request_is_cancelled(fresh, gateway):
    url, _ = gateway(models=[model("m", fresh[1].url)])
    fresh[1].script_faults("hang", 1)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(url + "/v1/chat/completions", json={"model": "m", "messages": MSG}, timeout=0.5)
    assert wait_until(lambda: fresh[1].stats()["cancelled"] == 1, 5)


# -- a request that fails because of itself ("poison") -------------------------------------------------------

POISON_HEALTH = {"interval": 60, "failure_threshold": 3, "cooldown": 60}


def test_when_a_poison_request_comes_every_few_seconds_then_other_callers_stay_served(fresh, gateway):
    # One replica: before, the poison request's three 500s opened the breaker and every caller got 503 for the
    # cooldown. A threshold of 2 shows that one request counts once, even when it was tried twice.
    url, _ = gateway(models=[model("m", fresh[0].url)], health={**POISON_HEALTH, "failure_threshold": 2})
    c = client(url)
    for _ in range(3):
        fresh[0].script_faults("status:500", 3)  # the upstream answers this request 500 however often it is sent
        with pytest.raises(openai.InternalServerError) as err:
            c.chat.completions.create(model="m", messages=MSG)
        assert err.value.status_code == 500
        fresh[0].clear_faults()
        for _ in range(5):
            assert c.chat.completions.create(model="m", messages=MSG).choices[0].message.content
    assert httpx.get(url + "/ready").json()["models"]["m"] == 1


def test_when_poison_requests_come_back_to_back_then_the_breaker_stays_closed(fresh, gateway):
    # No valid request in between to reset the count: only recognising the request as the cause keeps the model up.
    url, _ = gateway(models=[model("m", fresh[0].url)], health={**POISON_HEALTH, "failure_threshold": 2})
    c = client(url)
    fresh[0].script_faults("status:500", 8)
    for _ in range(4):
        with pytest.raises(openai.InternalServerError):
            c.chat.completions.create(model="m", messages=MSG)
    assert served(fresh)[0] == 8  # two tries each
    assert c.chat.completions.create(model="m", messages=MSG).choices[0].message.content


def test_when_one_request_fails_on_every_try_then_it_counts_once_against_the_breaker(fresh, gateway):
    url, _ = gateway(models=[model("m", fresh[0].url)], health={**POISON_HEALTH, "failure_threshold": 2})
    fresh[0].script_faults("status:503", 3)
    c = client(url)
    with pytest.raises(openai.InternalServerError):
        c.chat.completions.create(model="m", messages=MSG)
    assert served(fresh)[0] == 3
    assert c.chat.completions.create(model="m", messages=MSG).choices[0].message.content


def test_when_one_replica_answers_500_and_another_serves_then_only_the_failing_one_is_charged(fresh, gateway):
    url, _ = gateway(models=[model("m", fresh[0].url, fresh[1].url, routing="least_outstanding")], health=POISON_HEALTH)
    fresh[0].script_faults("status:500", 100)
    c = client(url)
    for _ in range(8):
        assert c.chat.completions.create(model="m", messages=MSG).choices[0].message.content
    assert served(fresh)[0] == 3  # its breaker opened after three distinct requests failed there
    assert httpx.get(url + "/ready").json()["models"]["m"] == 1


def test_when_every_replica_answers_a_request_500_then_it_is_not_retried_further(fresh, gateway):
    url, _ = gateway(models=[model("m", fresh[0].url, fresh[1].url)], health=POISON_HEALTH)
    fresh[0].script_faults("status:500", 3)
    fresh[1].script_faults("status:500", 3)
    with pytest.raises(openai.InternalServerError):
        client(url).chat.completions.create(model="m", messages=MSG)
    assert served(fresh)[:2] == [1, 1]  # one try each: a third would have failed the same way
    for r in fresh[:2]:
        r.clear_faults()
    assert httpx.get(url + "/ready").json()["models"]["m"] == 2


# -- garbage where the first stream event should be ----------------------------------------------------------


def test_when_a_stream_begins_with_garbage_then_it_is_retried_before_anything_is_sent(fresh, gateway):
    url, _ = gateway(models=[model("m", fresh[0].url)])
    fresh[0].script_faults("garbage", 1)
    chunks = list(client(url).chat.completions.create(model="m", messages=MSG, stream=True, max_tokens=5))
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == 5
    assert served(fresh)[0] == 2


def test_when_a_replica_streams_garbage_then_another_replica_answers(fresh, gateway):
    url, _ = gateway(
        models=[model("m", fresh[0].url, fresh[1].url, routing="least_outstanding")],
        health={"interval": 60, "failure_threshold": 100, "cooldown": 60},
    )
    fresh[0].script_faults("garbage", 100)
    c = client(url)
    for _ in range(4):
        raw = c.chat.completions.with_raw_response.create(model="m", messages=MSG, stream=True, max_tokens=3)
        assert raw.headers["x-interlock-upstream"] == "d1"
        assert "".join(ch.choices[0].delta.content or "" for ch in raw.parse() if ch.choices)
    assert served(fresh)[0] >= 1  # d0 was tried, and its garbage never reached the client


def test_when_every_replica_streams_garbage_then_the_client_gets_a_clean_error(fresh, gateway):
    url, _ = gateway(models=[model("m", fresh[0].url)])
    fresh[0].script_faults("garbage", 10)
    with pytest.raises(openai.APIStatusError) as err:
        list(client(url).chat.completions.create(model="m", messages=MSG, stream=True, max_tokens=5))
    assert err.value.status_code == 502
    assert "not JSON" in err.value.message
