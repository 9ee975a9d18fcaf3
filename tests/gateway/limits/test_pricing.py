"""Request cost from configuration and litellm's bundled price map; TPM token estimates."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import ModelConfig
from gateway.limits import Pricing, estimate_tokens
from gateway.types import Usage


def litellm_entry(name: str) -> dict:
    """The price map entry as shipped in the installed litellm, read independently of ``Pricing``."""
    spec = importlib.util.find_spec("litellm")
    if spec is None:
        pytest.skip("litellm is not installed")
    folder = Path(next(iter(spec.submodule_search_locations)))
    return json.loads((folder / "model_prices_and_context_window_backup.json").read_text())[name]


def model(name: str, upstream: str | None = None, **pricing: float) -> ModelConfig:
    return ModelConfig(
        name=name,
        deployments=[{"url": "http://vllm:8000", "model": upstream}],
        pricing=pricing,
    )


def test_when_prices_are_configured_then_cost_uses_them():
    pricing = Pricing([model("local", input_per_token=1e-6, output_per_token=2e-6)])

    cost = pricing.cost("local", Usage(prompt_tokens=1000, completion_tokens=500))

    assert cost == pytest.approx(1000 * 1e-6 + 500 * 2e-6)
    assert pricing.known("local")


def test_when_the_model_is_in_litellms_map_then_its_prices_are_used():
    entry = litellm_entry("gpt-4o-mini")
    pricing = Pricing()

    cost = pricing.cost("gpt-4o-mini", Usage(prompt_tokens=1000, completion_tokens=500))

    assert cost == pytest.approx(1000 * entry["input_cost_per_token"] + 500 * entry["output_cost_per_token"])
    assert cost > 0


def test_when_a_public_name_maps_to_a_known_upstream_model_then_that_price_is_used():
    entry = litellm_entry("gpt-4o-mini")
    pricing = Pricing([model("cheap", upstream="openai/gpt-4o-mini")])

    assert pricing.prices("cheap") == (entry["input_cost_per_token"], entry["output_cost_per_token"])


def test_when_only_one_price_is_configured_then_the_other_comes_from_litellm():
    entry = litellm_entry("gpt-4o-mini")
    pricing = Pricing([model("gpt-4o-mini", input_per_token=0.0)])

    assert pricing.prices("gpt-4o-mini") == (0.0, entry["output_cost_per_token"])


def test_when_the_model_is_unknown_then_cost_is_zero_and_flagged():
    pricing = Pricing([model("my-finetune")])

    cost = pricing.cost("my-finetune", Usage(prompt_tokens=1000, completion_tokens=500))

    assert cost == 0.0
    assert not pricing.known("my-finetune")
    assert "my-finetune" in pricing.unknown


def test_when_pricing_is_used_then_litellm_is_not_imported():
    code = (
        "import sys; from gateway.limits import Pricing; from gateway.types import Usage; "
        "assert Pricing().cost('gpt-4o-mini', Usage(10, 10)) > 0; "
        "assert 'litellm' not in sys.modules, 'litellm was imported'"
    )

    subprocess.run([sys.executable, "-c", code], check=True)


CHAT = [{"role": "system", "content": "x" * 40}, {"role": "user", "content": "y" * 400}]


@pytest.mark.parametrize(
    ("route", "body", "expected"),
    [
        # chat: chars/4 (110) + 4 per message + 3 priming, + max_tokens
        ("chat", {"messages": CHAT, "max_tokens": 100}, 110 + 8 + 3 + 100),
        ("chat", {"messages": CHAT, "max_completion_tokens": 50, "max_tokens": 100}, 121 + 50),
        ("chat", {"messages": CHAT}, 121 + 256),
        ("chat", {"messages": CHAT, "max_tokens": 10, "n": 3}, 121 + 30),
        ("chat", {"messages": [{"role": "user", "content": [{"type": "text", "text": "z" * 8}]}]}, 2 + 4 + 3 + 256),
        ("chat", {"messages": [{"role": "user", "content": [{"type": "image_url"}]}], "max_tokens": 0}, 85 + 4 + 3),
        ("chat", {"messages": "not a list", "max_tokens": True}, 0 + 256),
        ("completions", {"prompt": "a" * 400, "max_tokens": 16}, 100 + 16),
        ("completions", {"prompt": ["a" * 40, "b" * 40], "max_tokens": 1}, 20 + 1),
        ("completions", {"prompt": [1, 2, 3, 4], "max_tokens": 1}, 4 + 1),
        ("completions", {"prompt": [[1, 2], [3]], "max_tokens": -5}, 3 + 0),
        ("embeddings", {"input": "e" * 401}, 101),
        ("embeddings", {"input": ["a" * 4, "b" * 4]}, 2),
        ("embeddings", {}, 1),
    ],
)
def test_when_estimating_tokens_then_prompt_chars_over_4_plus_the_output_allowance(route, body, expected):
    assert estimate_tokens(route, body) == expected


def test_when_a_default_is_configured_then_requests_without_max_tokens_reserve_it():
    assert estimate_tokens("completions", {"prompt": "abcd"}, default_completion_tokens=1000) == 1 + 1000
