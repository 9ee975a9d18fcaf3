"""Policies in the database: put through one gateway's admin API, applied by another gateway process without a
restart (config bus over Redis, PostgreSQL shared); removed the same way; invalid ones refused naming the field;
the ``interlock policies`` CLI over the same API."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from click.testing import CliRunner

from interlock.cli import main
from interlock.emulator import EmulatorServer
from tests.support.gateway import model
from tests.support.polling import eventually
from tests.support.processes import GatewayProcess
from tests.support.servers import temporary_database

TOKEN = "admin-token-for-tests"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
REFUSAL = "I'm sorry, but I can't help with that."
NO_REFUSALS = {"output": {"refusal": {"action": "block"}}, "attach": {"models": ["m"]}}


@pytest.fixture(scope="module")
def replica() -> Iterator[EmulatorServer]:
    with EmulatorServer(port=0, served_model_names=["m"]) as server:
        yield server


@pytest.fixture(scope="module")
def two_gateways(replica, postgres_server_url, redis_server_url) -> Iterator[list[GatewayProcess]]:
    """Two gateway processes on one database and one Redis (started once: each loads every guard model)."""
    with contextlib.ExitStack() as stack:
        config = {
            "database": {"url": stack.enter_context(temporary_database(postgres_server_url))},
            "redis": {"url": redis_server_url.rsplit("/", 1)[0] + "/13"},
            "models": [model("m", replica.url)],
            "access": {"admin_tokens": {TOKEN: "admin"}},
            "guardrails": {"enabled": True},
        }
        procs = [GatewayProcess(config, startup_timeout=240) for _ in range(2)]
        for p in procs:
            p.launch()
            stack.callback(p.cleanup)
        for p in procs:
            p.wait_ready()
        yield procs


def refusal_blocked(url: str, replica: EmulatorServer) -> bool:
    replica.script_replies(REFUSAL)
    c = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    try:
        c.chat.completions.create(model="m", messages=[{"role": "user", "content": "hello"}])
    except openai.BadRequestError as exc:
        assert exc.code == "guardrail_blocked"
        return True
    return False


def test_when_a_policy_is_put_through_one_gateway_then_another_applies_it_without_a_restart(two_gateways, replica):
    a, b = two_gateways
    replica.reset()
    assert not refusal_blocked(b.url, replica)
    r = httpx.put(a.url + "/admin/policies/no-refusals", json=NO_REFUSALS, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["source"] == "database" and r.json()["attach"]["models"] == ["m"]
    assert refusal_blocked(a.url, replica)  # applied on the replica that took the change before it answered
    assert eventually(lambda: refusal_blocked(b.url, replica))
    shown = httpx.get(b.url + "/admin/policies/no-refusals", headers=ADMIN).json()
    assert shown["policy"]["output"]["refusal"]["action"] == "block" and shown["version"] == 1
    assert httpx.delete(a.url + "/admin/policies/no-refusals", headers=ADMIN).status_code == 204
    assert eventually(lambda: not refusal_blocked(b.url, replica))
    assert httpx.get(b.url + "/admin/policies/no-refusals", headers=ADMIN).status_code == 404


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": {"nope": {"action": "block"}}}, "input.nope"),
        ({"output": {"refusal": {"action": "mask"}}}, "output.refusal.action"),
        ({"output": {"toxicity": {"action": "mask"}}}, "output.toxicity.action"),
        ({"output": {"json": {"action": "block", "types": {"json": "mask"}}}}, "output.json.types.json"),
        ({"output_actions": {"redaction": "<{type}>"}}, "output_actions.redaction"),
        ({"input": {"pii": {"action": "retry"}}}, "input.pii.action"),
        ({"output": {"refusal": {"action": "fallback"}}}, "output.refusal.action"),
        ({"timeout": -1}, "timeout"),
        ({"on_error": "maybe"}, "on_error"),
        ({"output_actions": {"retries": 99}}, "output_actions.retries"),
        ({"surprise": 1}, "surprise"),
        ({"attach": {"models": "m"}}, "attach.models"),
        ({"attach": {"planets": ["x"]}}, "attach"),
    ],
)
def test_when_a_policy_is_invalid_then_a_400_names_the_field(two_gateways, body, param):
    r = httpx.put(two_gateways[0].url + "/admin/policies/bad", json=body, headers=ADMIN)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param
    assert httpx.get(two_gateways[0].url + "/admin/policies/bad", headers=ADMIN).status_code == 404


def test_when_the_cli_puts_lists_shows_and_deletes_a_policy_then_the_api_reflects_each(two_gateways, tmp_path):
    url = two_gateways[0].url + "/admin"
    path = tmp_path / "policy.yaml"
    path.write_text("output:\n  refusal: {action: retry}\nattach:\n  teams: [team-a]\n")

    def run(*args: str) -> Any:
        result = CliRunner().invoke(main, ["policies", *args, "--url", url, "--token", TOKEN])
        assert result.exit_code == 0, result.output
        return result.output

    run("put", "careful", str(path))
    assert "careful" in run("list") and "team:team-a" in run("list")
    assert json.loads(run("show", "careful"))["policy"]["output"]["refusal"]["action"] == "retry"
    run("delete", "careful")
    assert "careful" not in run("list")
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: {pii: {action: retry}}\n")
    result = CliRunner().invoke(main, ["policies", "put", "bad", str(bad), "--url", url, "--token", TOKEN])
    assert result.exit_code == 1 and "input.pii.action" in result.output
