"""The request series by key, team, model, route and prompt version, read from GET /metrics, and their bound:
a tenant with many keys or a client varying its system prompt gets ``other``, not a series each."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from interlock.emulator import EmulatorServer
from tests.support.gateway import model, running_gateway

MASTER = "sk-il-master-key-for-metric-label-tests"
ADMIN = {"authorization": f"Bearer {MASTER}"}
FAMILIES = ("interlock_requests", "interlock_request_duration_seconds", "interlock_tokens", "interlock_cost_usd")


@pytest.fixture(scope="module")
def worker() -> Iterator[EmulatorServer]:
    with EmulatorServer(port=0, served_model_names=["m"], output_tokens=4) as w:
        yield w


@pytest.fixture
def gw(worker, tmp_path) -> Iterator[str]:
    settings = {
        "models": [model("m", worker.url, pricing={"input_per_token": 0.001, "output_per_token": 0.002})],
        "database": {"url": f"sqlite:///{tmp_path}/labels.db", "flush_interval": 0.1},
        "access": {"master_key": MASTER, "require_keys": True},
        "observability": {"metric_labels": {"max_keys": 2, "max_teams": 5, "max_prompt_versions": 1}},
    }
    with running_gateway(**settings) as (url, _):
        yield url


def admin(url: str, path: str, body: dict) -> dict:
    r = httpx.post(url + "/admin" + path, json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    return r.json()


def chat(url: str, key: str, system: str | None = None, route: str = "chat") -> None:
    messages = [{"role": "user", "content": "hello"}]
    if system:
        messages.insert(0, {"role": "system", "content": system})
    body = {"model": "m", "max_tokens": 4}
    body.update({"messages": messages} if route == "chat" else {"prompt": "hello"})
    path = "/v1/chat/completions" if route == "chat" else "/v1/completions"
    r = httpx.post(url + path, json=body, headers={"authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text


def samples(url: str, family: str) -> list:
    text = httpx.get(url + "/metrics").text
    return [s for f in text_string_to_metric_families(text) if f.name == family for s in f.samples]


def by(url: str, family: str, suffix: str = "_total") -> dict[tuple, float]:
    """{(route, key, team, prompt_version): value} of one family's samples (``suffix`` picks the sample)."""
    out: dict[tuple, float] = {}
    for s in samples(url, family):
        if s.name == family + suffix:
            k = (s.labels["route"], s.labels["key"], s.labels["team"], s.labels["prompt_version"])
            out[k] = out.get(k, 0) + s.value
    return out


def test_when_keys_of_a_team_call_then_each_series_has_its_key_team_and_prompt_version(gw):
    team = admin(gw, "/teams", {"name": "shop"})
    a, b = (admin(gw, "/keys", {"name": n, "team": "shop"}) for n in "ab")
    chat(gw, a["key"], system="You are a shop assistant.")
    chat(gw, a["key"], system="You are a shop assistant.")
    chat(gw, b["key"], route="completions")
    requests = by(gw, "interlock_requests")
    [version] = {k[3] for k in requests if k[3]}
    assert len(version) == 12  # the system prompt's fingerprint, as records and rollups carry it
    assert requests[("chat", a["id"], team["id"], version)] == 2
    assert requests[("completions", b["id"], team["id"], "")] == 1
    assert by(gw, "interlock_request_duration_seconds", "_count")[("chat", a["id"], team["id"], version)] == 2
    assert by(gw, "interlock_tokens")[("chat", a["id"], team["id"], version)] > 0
    assert by(gw, "interlock_cost_usd")[("chat", a["id"], team["id"], version)] > 0
    assert by(gw, "interlock_goodput")[("completions", b["id"], team["id"], "")] == 1


def test_when_more_keys_and_prompts_than_the_bound_call_then_the_rest_count_as_other(gw):
    keys = [admin(gw, "/keys", {"name": f"k{i}"}) for i in range(5)]
    for i, k in enumerate(keys):  # five keys, five system prompts: bound 2 keys and 1 prompt version
        chat(gw, k["key"], system=f"prompt number {i}")
    requests = by(gw, "interlock_requests")
    assert sum(requests.values()) == 5
    seen_keys = {k[1] for k in requests}
    assert seen_keys == {keys[0]["id"], keys[1]["id"], "other"}
    assert sum(v for k, v in requests.items() if k[1] == "other") == 3
    versions = {k[3] for k in requests}
    assert len(versions) == 2 and "other" in versions
    for family in FAMILIES:  # every request series has the labels
        assert {"key", "team", "prompt_version"} <= samples(gw, family)[0].labels.keys(), family


def test_when_label_combinations_reach_max_series_then_new_ones_share_one_other_series():
    from observability import GatewayMetrics
    from observability.config import MetricLabelsConfig

    m = GatewayMetrics(labels=MetricLabelsConfig(max_keys=1000, max_teams=1000, max_series=10))
    for i in range(100):
        m.series("chat", "m", f"key-{i}", "t", None).count(200)
    text = m.render().decode()
    lines = [line for line in text.splitlines() if line.startswith("interlock_requests_total{")]
    assert len(lines) == 11  # ten combinations, then one shared by every later key
    assert 'key="other",model="m",prompt_version="",route="chat",status="200",team="other"} 90.0' in text
