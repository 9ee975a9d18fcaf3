"""Cost tiers: a cheap, explainable estimate of how hard a query is, in microseconds and without a model.

Easy queries (short factual questions, greetings, look-ups) go to a cheaper model; long, multi-part, code,
maths and reasoning requests to the stronger one. The estimate reads the last user turn and the length of the
conversation; each feature adds a bounded amount, so the score explains itself (``difficulty_features``).
"""

from __future__ import annotations

import math
import re

from router.intent.definition import Target

_CODE = re.compile(
    r"```|\bdef \w+\(|\bclass \w+|\bSELECT\b.*\bFROM\b|#include|\bimport \w+|=>|\{\s*$|;\s*$|</?\w+>|"
    r"\b(python|c\+\+|java(script)?|typescript|html|css|sql|rust|golang|bash|regex|program|function|script|"
    r"algorithm|compile|api)\b",
    re.I | re.M,
)
_MATH = re.compile(
    r"\d\s*[-+*/^=<>]\s*\d|\w\s*[-+*/^=<>]\s*\d|\bf\(x\)|\|[^|]+\||%|"
    r"\b(prove|proof|integral|derivative|equation|inequality|theorem|probability|solve|calculate|how many|"
    r"remainder|integers?|area|average|sum|total|percent(age)?)\b",
    re.I,
)
_REASON = re.compile(
    r"\b(why|explain|compare|analy[sz]e|step by step|design|optimi[sz]e|debug|implement|evaluate|trade-?offs?|"
    r"argue|critique|plan|strategy|essay|refactor|suppose|imagine|if|relationship|reasons?|puzzle|riddle|"
    r"statements?|true or false|does not belong)\b",
    re.I,
)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_PARTS = re.compile(r"\?|^\s*(?:\d+[.)]|[-*\u2022])\s+", re.M)


def difficulty_features(text: str, turns: int = 1) -> dict[str, float]:
    words = len(text.split())
    return {
        "length": 0.35 * min(1.0, math.log1p(words) / math.log1p(300)),
        "code": 0.25 if _CODE.search(text) else 0.0,
        "math": (0.2 if _MATH.search(text) else 0.0) + (0.1 if len(_NUMBER.findall(text)) >= 2 else 0.0),
        "reasoning": min(0.2, 0.1 * len(_REASON.findall(text))),
        "parts": min(0.1, 0.03 * max(0, len(_PARTS.findall(text)) - 1)),
        "conversation": min(0.1, 0.02 * max(0, turns - 1)),
    }


def difficulty(text: str, turns: int = 1) -> float:
    """0 (trivial) .. 1 (hard)."""
    return round(min(1.0, sum(difficulty_features(text, turns).values())), 3)


def pick_model(target: Target, score: float) -> str | None:
    """The first tier whose ``max_difficulty`` covers ``score``, else the target's own (strongest) model."""
    for tier in target.tiers:
        if score <= tier.max_difficulty:
            return tier.model
    return target.model
