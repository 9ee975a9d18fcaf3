"""What records carry for the console (gateway/recording.py): prompt version, details, step span names."""

from __future__ import annotations

from gateway.recording import details, prompt_version, step_name
from gateway.types import RequestContext


def test_when_two_requests_share_a_system_prompt_then_they_share_a_prompt_version():
    a = prompt_version({"messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "a"}]})
    b = prompt_version({"messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "b"}]})
    c = prompt_version({"messages": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "a"}]})
    assert a == b != c and len(a) == 12
    assert prompt_version({"messages": [{"role": "user", "content": "a"}]}) is None
    assert prompt_version({"prompt": "x"}) is None


def test_when_steps_left_notes_then_details_keep_types_and_decisions_never_values():
    ctx = RequestContext("r", "chat", {"messages": [], "temperature": 0.3, "max_tokens": 9}, "m")
    ctx.notes["guardrails"] = {
        "action": "mask",
        "findings": [
            {"guard": "pii", "type": "EMAIL_ADDRESS", "action": "mask", "start": 3, "end": 20},
            {"guard": "pii", "type": "PERSON", "action": "allow"},
        ],
    }
    ctx.notes["cache"] = "miss"
    ctx.notes["route_decision"] = "intent:billing->model:small"
    d = details(ctx, "cfg1")
    assert d == {
        "config": "cfg1",
        "params": {"temperature": 0.3, "max_tokens": 9},
        "route": "intent:billing->model:small",
        "guards": ["pii:EMAIL_ADDRESS"],
        "guard_action": "mask",
        "cache": "miss",
    }


def test_when_a_step_is_named_for_its_span_then_the_name_is_short():
    class AuthenticateStep:
        async def __call__(self, ctx, call_next): ...

    async def _resolve_model(ctx, call_next): ...

    assert step_name(AuthenticateStep()) == "authenticate"
    assert step_name(_resolve_model) == "resolve_model"
