"""Output scorers: each looks at an answer (and the request it answers) and gives a score in [0, 1] (1 = bad)
and a verdict. Simple functions, registered by YAML name in ``SCORERS``; the output side of a policy (retry,
hedge, fallback, escalate: see AGENTS.md) acts on their verdicts. The toxicity model and the PII, secrets and
keyword guards also run on answers through ``Guardrails.check(direction="output")``.

    empty       the answer has no visible text
    json        ``response_format`` asked for JSON (or a JSON schema) and the answer is not valid JSON / breaks it
    refusal     "As an AI I can't ..." and similar phrasings
    relevance   1 - cosine similarity of question and answer (the shared MiniLM embedding)
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from guardrails.types import GuardContext


@dataclass(slots=True, frozen=True)
class Score:
    scorer: str
    score: float
    failed: bool
    #: Why, for the trace (never the answer's text).
    detail: str = ""


Scorer = Callable[[str, GuardContext], Awaitable[Score]]


async def score_empty(answer: str, ctx: GuardContext) -> Score:
    empty = not answer.strip()
    return Score("empty", 1.0 if empty else 0.0, empty, "no visible text" if empty else "")


async def score_json(answer: str, ctx: GuardContext) -> Score:
    """``ctx.extra["response_format"]``: OpenAI's ``{"type": "json_object"}`` or ``{"type": "json_schema", ...}``."""
    fmt = ctx.extra.get("response_format") or {}
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind not in ("json_object", "json_schema"):
        return Score("json", 0.0, False, "no JSON asked for")
    try:
        value = json.loads(answer)
    except ValueError as exc:
        return Score("json", 1.0, True, f"invalid JSON at char {getattr(exc, 'pos', '?')}")
    if kind == "json_object" and not isinstance(value, dict):
        return Score("json", 1.0, True, "JSON, but not an object")
    schema = (fmt.get("json_schema") or {}).get("schema") if kind == "json_schema" else None
    if schema:
        problem = schema_problem(value, schema)
        if problem:
            return Score("json", 1.0, True, problem)
    return Score("json", 0.0, False)


def schema_problem(value: Any, schema: dict) -> str | None:
    """The first way ``value`` breaks ``schema`` (jsonschema when installed, else types and required keys)."""
    try:
        import jsonschema
    except ImportError:
        return _basic_schema_problem(value, schema, "$")
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(value))
    if error is None:
        return None
    return f"schema: {'/'.join(map(str, error.absolute_path)) or '$'}: {error.validator} failed"


_TYPES = {"object": dict, "array": list, "string": str, "number": (int, float), "integer": int, "boolean": bool}


def _basic_schema_problem(value: Any, schema: dict, path: str) -> str | None:
    expected = _TYPES.get(schema.get("type", ""))
    if expected is not None and not isinstance(value, expected):
        return f"schema: {path}: expected {schema['type']}"
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                return f"schema: {path}: missing '{key}'"
        for key, sub in (schema.get("properties") or {}).items():
            if key in value and isinstance(sub, dict):
                problem = _basic_schema_problem(value[key], sub, f"{path}/{key}")
                if problem:
                    return problem
    return None


_VERBS = (
    r"(?:help|assist|provide|comply|fulfil+|do|answer|share|create|write|generate|discuss|support|engage|give|"
    r"offer|browse|access|complete|continue|produce|make)"
)
_REFUSAL = re.compile(
    r"(?i)^\W*(?:(?:i'?m sorry|i am sorry|sorry|unfortunately|apologies)[,.!\s]*)?(?:but\s+)?"
    r"(?:as an ai(?: language model)?[, ]+)?"
    r"(?:i\s+(?:can(?:no|')t|cannot|am (?:not able|unable) to|'m (?:not able|unable) to|won'?t|will not)\s+"
    + _VERBS
    + r"|i must decline|i do not feel comfortable|i'?m not (?:able|allowed|permitted) to|that'?s not something i can)"
)
_AS_AN_AI = re.compile(r"(?i)\bas an ai\b.{0,40}\b(can(?:no|')t|cannot|unable|not able)\b")


async def score_refusal(answer: str, ctx: GuardContext) -> Score:
    head = answer[:400]
    refused = bool(_REFUSAL.search(head) or _AS_AN_AI.search(head))
    return Score("refusal", 1.0 if refused else 0.0, refused, "refusal phrasing" if refused else "")


async def score_relevance(answer: str, ctx: GuardContext) -> Score:
    """``ctx.extra["question"]`` and the answer, embedded once each through the shared memo."""
    question = ctx.extra.get("question") or ""
    threshold = float(ctx.extra.get("relevance_threshold", 0.15))
    if not question.strip() or not answer.strip() or ctx.embed is None:
        return Score("relevance", 0.0, False, "nothing to compare")
    q, a = await ctx.embed(question), await ctx.embed(answer)
    cosine = float(np.dot(q, a))
    return Score("relevance", round(1.0 - max(cosine, 0.0), 4), cosine < threshold, f"cosine {cosine:.2f}")


SCORERS: dict[str, Scorer] = {
    "empty": score_empty,
    "json": score_json,
    "refusal": score_refusal,
    "relevance": score_relevance,
}
