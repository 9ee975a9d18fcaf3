"""Which requests may be cached at all. Every rule answers with a reason (for the trace) or ``None``.

- Sampling: ``temperature`` > 0 (or unset, which means 1 for OpenAI and vLLM) draws a new answer on every call,
  so it is not cached unless ``cache_sampled`` says so. ``n`` > 1 and ``logprobs`` are never cached.
- User-specific ("where is my order?") and time-sensitive ("weather in Oslo now?") questions: by pattern, and
  by a small logistic regression trained on generated sentences (``cache/training/``, weights in
  ``_cacheability.json``) for the wordings the patterns miss.
- Personal data: a request the PII guard flagged (``pii_found``), or that contains an e-mail address, a phone
  or card number by our own patterns, is never stored under a shared scope (team, global).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from cache._features import features
from cache.config import CacheabilityConfig

_USER_SPECIFIC = re.compile(
    r"\b(?:status|where(?:'s| is)|track(?:ing)?|balance|when will|has|did|is|show|check|look up|cancel|update)\b"
    r".{0,40}\bmy\s+(?:\w+\s+)?(?:order|package|parcel|account|balance|subscription|bill|invoice|refund|booking|"
    r"reservation|appointment|ticket|claim|application|delivery|flight|loan|payment|shipment|cart|points|plan)s?\b"
    r"|\b(?:do|did|have|am|was) i\b.{0,30}\b(?:order|owe|pay|paid|spend|spent|book|receive|have left)\b"
    r"|\bmy (?:last|latest|recent|current) \w+",
    re.IGNORECASE,
)
_TIME_SENSITIVE = re.compile(
    r"\b(?:right now|now|today|tonight|tomorrow|yesterday|currently|at the moment|this (?:morning|evening|"
    r"afternoon|week|weekend|month)|latest|breaking|live|so far this)\b"
    r"|\b(?:weather|forecast|stock price|share price|exchange rate|headlines|traffic|score of)\b"
    r"|\bwhat time is it\b|\bwhat(?:'s| is) the (?:date|time)\b",
    re.IGNORECASE,
)
_PII = re.compile(
    r"[\w.+-]+@[\w-]+\.[\w.]+"  # e-mail
    r"|(?<!\d)(?:\+?\d[\d ()-]{8,}\d)(?!\d)"  # phone or card number
    r"|\b\d{3}-\d{2}-\d{4}\b",  # US SSN
)
SHARED_SCOPES = frozenset({"team", "global"})


class Classifier:
    """Logistic regression over hashed word n-grams; ~10 µs for a short question, no model runtime."""

    def __init__(self, path: Path | None = None) -> None:
        data = json.loads((path or Path(__file__).with_name("_cacheability.json")).read_text())
        self.bias = float(data["bias"])
        self.weights = {int(k): float(v) for k, v in data["weights"].items()}

    def probability(self, text: str) -> float:
        w = self.weights
        z = self.bias + sum(w.get(f, 0.0) for f in features(text))
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


def sampling_reason(body: dict[str, Any], config: CacheabilityConfig) -> str | None:
    n = body.get("n")
    if isinstance(n, int) and n > 1:
        return "n>1"
    if body.get("logprobs"):
        return "logprobs"
    if not config.cache_sampled:
        t = body.get("temperature")
        if t is None or t > 0:
            return "temperature>0"
    return None


def query_reason(query: str, config: CacheabilityConfig, classifier: Classifier | None) -> str | None:
    """``user_specific`` / ``time_sensitive`` / ``classifier``, or ``None`` when the question may be cached."""
    if config.rules:
        if _USER_SPECIFIC.search(query):
            return "user_specific"
        if _TIME_SENSITIVE.search(query):
            return "time_sensitive"
    if config.classifier and classifier is not None and classifier.probability(query) >= config.classifier_threshold:
        return "classifier"
    return None


def has_personal_data(text: str) -> bool:
    return _PII.search(text) is not None
