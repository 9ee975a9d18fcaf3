"""``POST /v1/guardrails/check``: run the guards of one direction on a text, as a policy (or every guard with
its shipped threshold) would, and say what they found. Parses and validates here; the library decides."""

from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import InterlockError, InvalidRequest, ServiceUnavailable
from gateway.guarding import guard_context
from gateway.types import RequestContext
from guardrails import GuardFailed

_FIELDS = {"text", "direction", "policy"}


async def check(gateway: Any, raw: bytes, authorization: str | None, request_id: str) -> dict:
    """The response body; raises ``InterlockError`` (4xx naming the field, 401, 503) otherwise."""
    runtime = gateway.guardrails
    if runtime is None:
        raise InterlockError("Guardrails are not enabled on this gateway (guardrails.enabled).", status=404)
    if gateway.access is not None:
        gateway.access.authenticator.authenticate(authorization)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The body is not valid JSON: {exc}.") from exc
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object with 'text'.")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise InvalidRequest(f"Unknown field '{unknown[0]}' (accepted: {sorted(_FIELDS)}).", param=unknown[0])
    text = body.get("text")
    if not isinstance(text, str):
        raise InvalidRequest("'text' is required and must be a string.", param="text")
    direction = body.get("direction", "input")
    if direction not in ("input", "output"):
        raise InvalidRequest("'direction' must be 'input' or 'output'.", param="direction")
    name = body.get("policy")
    policy = None
    if name is not None:
        if not isinstance(name, str):
            raise InvalidRequest("'policy' must be a string.", param="policy")
        policy = runtime.policy(name)
        if policy is None:
            raise InvalidRequest(f"Unknown policy '{name}'.", param="policy", code="policy_not_found")
    ctx = RequestContext(request_id=request_id, route="chat", body={}, model="-")  # holds the embedding memo
    try:
        verdict = await runtime.check(text, direction, policy, guard_context(gateway, ctx))
    except GuardFailed as exc:
        raise ServiceUnavailable(
            f"The guardrail '{exc.guard}' is unavailable: {exc.message}.", code="guardrail_unavailable"
        ) from exc
    return {
        "action": verdict.action.value,
        "text": verdict.text,
        "findings": [f.as_dict() for f in verdict.findings],
        "scores": verdict.scores,
    }
