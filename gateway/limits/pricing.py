"""What a request costs, and a cheap token estimate to reserve against TPM before it runs.

Prices come from the model's ``pricing`` in the configuration; a price not set there falls back to
litellm's price map (``model_prices_and_context_window_backup.json``, shipped inside the litellm
package). The file is read directly, once and only when first needed: importing litellm would take
seconds and may fetch the map from the internet.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from gateway.config import ModelConfig, PricingConfig
from gateway.types import Usage

log = logging.getLogger("interlock.limits")

#: Output tokens reserved for a request that sets no ``max_tokens``.
DEFAULT_COMPLETION_TOKENS = 256


@functools.cache
def litellm_price_map() -> dict[str, Any]:
    """litellm's bundled price map, or ``{}`` when litellm is not installed."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(next(iter(spec.submodule_search_locations))) / "model_prices_and_context_window_backup.json"
    try:
        return orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        log.warning("cannot read litellm's price map at %s: %r", path, exc)
        return {}


def _candidates(name: str) -> list[str]:
    # litellm keys both "gpt-4o-mini" and "anthropic/claude-..."; try the name as given, then unprefixed.
    return [name, name.split("/", 1)[1]] if "/" in name else [name]


class Pricing:
    """USD per token for each model: configuration first, then litellm's map, else 0 (flagged)."""

    def __init__(self, models: Iterable[ModelConfig] = ()) -> None:
        self._config: dict[str, PricingConfig] = {}
        self._lookup: dict[str, list[str]] = {}
        for m in models:
            self._config[m.name] = m.pricing
            names = _candidates(m.name)
            for d in m.deployments:
                if d.model:
                    names += [n for n in _candidates(d.model) if n not in names]
            self._lookup[m.name] = names
        self._prices: dict[str, tuple[float, float]] = {}
        #: Models with at least one price found nowhere (their cost is undercounted as 0): for a warning
        #: at startup and a metric label.
        self.unknown: set[str] = set()

    def prices(self, model: str) -> tuple[float, float]:
        """``(input, output)`` USD per token; resolved once per model name."""
        found = self._prices.get(model)
        if found is None:
            found = self._prices[model] = self._resolve(model)
        return found

    def known(self, model: str) -> bool:
        """Whether both prices of ``model`` were found (in the configuration or litellm's map)."""
        self.prices(model)
        return model not in self.unknown

    def cost(self, model: str, usage: Usage) -> float:
        """USD of one request's usage."""
        inp, out = self.prices(model)
        return usage.prompt_tokens * inp + usage.completion_tokens * out

    def _resolve(self, model: str) -> tuple[float, float]:
        cfg = self._config.get(model, PricingConfig())
        inp, out = cfg.input_per_token, cfg.output_per_token
        if inp is None or out is None:
            table = litellm_price_map()
            for name in self._lookup.get(model, _candidates(model)):
                entry = table.get(name)
                if isinstance(entry, dict) and name != "sample_spec":
                    inp = inp if inp is not None else entry.get("input_cost_per_token")
                    out = out if out is not None else entry.get("output_cost_per_token")
                    break
        if inp is None or out is None:
            self.unknown.add(model)
            log.warning("no price for model %r: its cost counts as 0 (set models[].pricing)", model)
        return float(inp or 0.0), float(out or 0.0)


def _count(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return max(0, value)
    return None


def _text_tokens(value: Any) -> int:
    """Tokens of a prompt/input: a string, a list of strings, token ids, or lists of token ids."""
    if isinstance(value, str):
        return (len(value) + 3) // 4
    if isinstance(value, list):
        total = 0
        for item in value:
            if isinstance(item, str):
                total += (len(item) + 3) // 4
            elif isinstance(item, int):
                total += 1
            elif isinstance(item, list):
                total += len(item)
        return total
    return 0


def _chat_tokens(messages: Any) -> int:
    if not isinstance(messages, list):
        return 0
    chars, extra = 0, 3  # every reply is primed with a few tokens
    for msg in messages:
        if not isinstance(msg, dict):
            continue
        extra += 4  # role and separators
        content = msg.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, dict):
                    continue
                text = part.get("text")
                if isinstance(text, str):
                    chars += len(text)
                elif part.get("type") in ("image_url", "input_image", "input_audio"):
                    extra += 85  # a low-detail image; we cannot know better without decoding it
    return (chars + 3) // 4 + extra


def estimate_usage(route: str, body: dict, *, default_completion_tokens: int = DEFAULT_COMPLETION_TOKENS) -> Usage:
    """What a request may use, before it runs: prompt characters / 4 (plus a few tokens per message), and the
    output it may produce (``max_completion_tokens`` or ``max_tokens``, else the default) times ``n``. Reserved
    against TPM and, priced, against budgets at admission; settle replaces it with the real usage."""
    if route == "embeddings":
        return Usage(max(1, _text_tokens(body.get("input"))), 0)
    prompt = _chat_tokens(body.get("messages")) if route == "chat" else _text_tokens(body.get("prompt"))
    out = _count(body.get("max_completion_tokens"))
    if out is None:
        out = _count(body.get("max_tokens"))
    if out is None:
        out = default_completion_tokens
    n = _count(body.get("n")) or 1
    return Usage(prompt, out * n)


def estimate_tokens(route: str, body: dict, *, default_completion_tokens: int = DEFAULT_COMPLETION_TOKENS) -> int:
    """Tokens to reserve against TPM when a request is admitted (``estimate_usage``'s total)."""
    return estimate_usage(route, body, default_completion_tokens=default_completion_tokens).total_tokens
