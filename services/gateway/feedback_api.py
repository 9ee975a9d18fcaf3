"""``POST /v1/feedback``: parse, authenticate the key, hand over to ``gateway.feedback``. A request id that does not
exist and one made by another key get the same 404; a malformed body a 400 naming the field."""

from __future__ import annotations

from typing import Any

from gateway.errors import NotFound
from gateway.requests import parse_body


async def submit(gateway, raw: bytes, authorization: str | None) -> dict[str, Any]:
    if gateway.feedback is None:
        raise NotFound("Feedback is turned off on this gateway (feedback.enabled).")
    body = parse_body(raw)
    principal = gateway.access.authenticator.authenticate(authorization)
    return await gateway.feedback.submit(principal, body)
