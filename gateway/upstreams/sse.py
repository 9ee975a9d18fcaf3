"""Server-sent events as OpenAI and vLLM send them: ``data: {json}\\n\\n`` ... ``data: [DONE]\\n\\n``."""

from __future__ import annotations

import orjson

from gateway.types import Usage

DONE = b"[DONE]"


def event(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"


DONE_EVENT = event(DONE)


def usage_from(obj: dict) -> Usage | None:
    u = obj.get("usage")
    if not isinstance(u, dict):
        return None
    try:
        return Usage(int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0))
    except (TypeError, ValueError):
        return None


def chunk_usage(payload: bytes) -> Usage | None:
    """Usage of a stream chunk, parsing JSON only for the chunk that carries it (vLLM's last one)."""
    if b'"usage":{' not in payload and b'"usage": {' not in payload:
        return None
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    return usage_from(obj) if isinstance(obj, dict) else None


def is_json_object(payload: bytes) -> bool:
    """Whether an event's data is a JSON object, as every OpenAI stream chunk is (checked on a stream's first events,
    before the response is committed; later ones pass through unparsed)."""
    try:
        return isinstance(orjson.loads(payload), dict)
    except orjson.JSONDecodeError:
        return False


def is_usage_only(payload: bytes) -> bool:
    """The extra chunk ``stream_options.include_usage`` adds: no choices, just usage."""
    return b'"choices":[]' in payload or b'"choices": []' in payload


def is_role_only(payload: bytes) -> bool:
    """vLLM's first chat chunk announces the role with empty content: it carries no token yet."""
    return b'"role"' in payload and (b'"content":""' in payload or b'"content": ""' in payload)
