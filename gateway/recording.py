"""What a request record and its trace carry for the ops console, beyond the basic columns.

The book's list (chapter 10): the configuration in force, model and sampling parameters, the system prompt's
fingerprint (a prompt version), guard findings (types, never values), the route decision, the cache outcome.
Steps report their part in ``ctx.notes`` under the names below; ``details`` gathers them when the request ends.
``traced`` gives each pipeline step a child span of the request's span (only when spans are stored or exported
per step: otherwise the request path is unchanged).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import orjson

from gateway.pipeline import Handler, Step
from gateway.types import RequestContext
from observability.tracing import step_span

#: Sampling parameters copied into a record's details (values are numbers or short enums, never text).
PARAMS = ("temperature", "top_p", "top_k", "max_tokens", "max_completion_tokens", "seed", "n", "stream")
#: ``ctx.notes`` keys that steps set for the record: the intent router's decision (str), the guardrails' note
#: (``{"action", "findings": [{"guard", "type", ...}]}``: only guard and type are kept), the cache outcome
#: (``"hit-exact"``, ``"hit-semantic"``, ``"miss"``, ``"bypass"``).
NOTE_ROUTE, NOTE_GUARDS, NOTE_CACHE = "route_decision", "guardrails", "cache"

_PROMPT_VERSIONS: dict[str, str] = {}


def prompt_version(body: dict[str, Any]) -> str | None:
    """12 hex digits of the system (or developer) prompt's BLAKE2b, memoised: the same prompt is hashed once."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return None
    first = messages[0]
    if not isinstance(first, dict) or first.get("role") not in ("system", "developer"):
        return None
    content = first.get("content")
    if not isinstance(content, str):
        content = orjson.dumps(content).decode()
    found = _PROMPT_VERSIONS.get(content)
    if found is None:
        if len(_PROMPT_VERSIONS) > 4096:  # bounded: clients may vary their system prompts per request
            _PROMPT_VERSIONS.clear()
        found = _PROMPT_VERSIONS[content] = hashlib.blake2b(content.encode(), digest_size=6).hexdigest()
    return found


def config_version(settings: Any, models: Sequence[Any]) -> str:
    """A short fingerprint of the settings and the model table in force (secrets excluded by pydantic's dump)."""
    data = orjson.dumps(
        [settings.model_dump(mode="json", exclude={"access"}), [m.model_dump(mode="json") for m in models]],
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.blake2b(data, digest_size=6).hexdigest()


def details(ctx: RequestContext, config: str | None) -> dict[str, Any]:
    """The record's ``details`` JSON."""
    body, notes = ctx.body, ctx.notes
    out: dict[str, Any] = {"config": config, "params": {k: body[k] for k in PARAMS if k in body}}
    if NOTE_ROUTE in notes:
        out["route"] = notes[NOTE_ROUTE]
    guards = notes.get(NOTE_GUARDS)
    if guards:
        found = [f"{f.get('guard')}:{f.get('type')}" for f in guards.get("findings", ()) if f.get("action") != "allow"]
        if found:
            out["guards"] = found  # types, never values
        out["guard_action"] = guards.get("action")
    if NOTE_CACHE in notes:
        out["cache"] = notes[NOTE_CACHE]
    return out


def step_name(step: Step) -> str:
    """``AuthenticateStep`` -> ``authenticate``; ``Gateway._resolve_model`` -> ``resolve_model``."""
    name = getattr(step, "span_name", None)
    if name:
        return name
    raw = type(step).__name__ if not hasattr(step, "__qualname__") else step.__qualname__.rsplit(".", 1)[-1]
    raw = raw.removesuffix("Step").lstrip("_")
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in raw).lstrip("_")


def traced(step: Step) -> Step:
    """``step`` with a child span of the request's span, from its start until it calls the next step (or
    returns, or raises): the span measures the step, not the rest of the pipeline."""
    name = f"interlock.step {step_name(step)}"

    async def run(ctx: RequestContext, call_next: Handler) -> Any:
        span = step_span(ctx.notes.get("otel_span"), name)
        if span is None:
            return await step(ctx, call_next)

        async def next_(c: RequestContext) -> Any:
            span.end()
            return await call_next(c)

        try:
            return await step(ctx, next_)
        except BaseException as exc:
            if span.end_ns == 0:
                span.set_error(getattr(exc, "type", type(exc).__name__), type(exc).__name__)
            raise
        finally:
            span.end()  # a no-op when the step called the next one

    run.__qualname__ = name
    return run
