"""Server-sent events as OpenAI and vLLM send them: ``data: {json}\\n\\n`` ... ``data: [DONE]\\n\\n``."""

from __future__ import annotations

import orjson

from gateway.errors import UpstreamHTTPError, UpstreamProtocolError
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


def check_first_event(name: str, payload: bytes) -> None:
    """Raise ours unless a stream's early event is a JSON object that is not an error.

    Checked on the events read before the response is committed (the role chunk, the first token); later ones
    pass through unparsed. Garbage is ``UpstreamProtocolError`` (retried elsewhere); an error the upstream reports
    in-stream (vLLM's ``{"error": {...}}``) becomes ``UpstreamHTTPError`` with its code, so it is retried or
    relayed as the status it names instead of a 200 whose first chunk is an error.
    """
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError:
        obj = None
    if not isinstance(obj, dict):
        raise UpstreamProtocolError(f"upstream {name} began its stream with an event that is not JSON")
    error = obj.get("error")
    if error is not None and "choices" not in obj:
        code = error.get("code") if isinstance(error, dict) else None
        status = code if isinstance(code, int) and 400 <= code <= 599 else 502
        raise UpstreamHTTPError(status, payload)


def is_usage_only(payload: bytes) -> bool:
    """The extra chunk ``stream_options.include_usage`` adds: no choices, just usage."""
    return b'"choices":[]' in payload or b'"choices": []' in payload


def is_role_only(payload: bytes) -> bool:
    """vLLM's first chat chunk announces the role with empty content: it carries no token yet."""
    return b'"role"' in payload and (b'"content":""' in payload or b'"content": ""' in payload)
