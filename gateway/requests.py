"""Parse and check an OpenAI request body before anything else touches it.

Hand-written rather than a pydantic model on purpose: this runs on every request, costs a few microseconds this
way, and must pass unknown fields (vLLM's extra sampling parameters, ``guided_json``, ...) through untouched.
The checks catch what would otherwise become a confusing upstream error, and name the field.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import InvalidRequest
from gateway.ids import client_request_id
from gateway.ids import new_request_id as fresh_request_id
from gateway.types import RequestContext, Route

#: vLLM's default ``max_logprobs``: the most alternatives per token a request may ask for.
MAX_LOGPROBS = 20
#: Longest model name accepted (Hugging Face repo ids are at most 96 characters, plus the owner).
MAX_MODEL_NAME = 256
_ROLES = frozenset({"system", "user", "assistant", "tool", "function", "developer"})

# field -> (accepted types, minimum, maximum), the ranges vLLM's protocol.py and SamplingParams enforce (so a
# request fails here, naming the field, rather than upstream); bool is excluded from numbers explicitly below.
_INT64 = 2**63
_NUMBERS: dict[str, tuple[tuple[type, ...], float | None, float | None]] = {
    "temperature": ((int, float), 0, 2),
    "top_p": ((int, float), 0, 1),
    "top_k": ((int,), -1, None),
    "n": ((int,), 1, 128),
    # vLLM refuses max_tokens < 1 ("max_tokens must be at least 1").
    "max_tokens": ((int,), 1, None),
    "max_completion_tokens": ((int,), 1, None),
    "seed": ((int,), -_INT64, _INT64 - 1),
    "presence_penalty": ((int, float), -2, 2),
    "frequency_penalty": ((int, float), -2, 2),
    "top_logprobs": ((int,), 0, MAX_LOGPROBS),
    "repetition_penalty": ((int, float), 0, None),
    "min_p": ((int, float), 0, 1),
    "min_tokens": ((int,), 0, None),
}
#: Fields whose minimum is excluded, as in vLLM ("top_p must be in (0, 1]", "repetition_penalty must be > 0").
_ABOVE_ZERO = frozenset({"top_p", "repetition_penalty"})
# ``logprobs`` is a switch in chat and a count of alternatives in completions, capped like vLLM's max_logprobs.
_LOGPROBS: dict[str, tuple[tuple[type, ...], float | None, float | None]] = {
    "chat": ((bool,), None, None),
    "completions": ((int,), 0, MAX_LOGPROBS),
}
#: Content part type -> the field that carries its payload and that field's JSON types (vLLM's parsers).
_PARTS: dict[str, tuple[str, tuple[type, ...]]] = {
    "text": ("text", (str,)),
    "input_text": ("text", (str,)),
    "refusal": ("refusal", (str,)),
    "image_url": ("image_url", (dict, str)),
    "input_image": ("image_url", (dict, str)),
    "input_audio": ("input_audio", (dict,)),
    "audio_url": ("audio_url", (dict, str)),
    "video_url": ("video_url", (dict, str)),
    "file": ("file", (dict,)),
}


def new_request_id(client_value: str | None) -> str:
    """The client's ``x-request-id`` when it is sane, else a fresh one of ours (``gateway.ids``): the id a
    response shows as ``x-request-id``. A record's key is always ours, never this."""
    return client_request_id(client_value) or fresh_request_id()


def parse_body(raw: bytes) -> dict[str, Any]:
    if not raw:
        raise InvalidRequest("The request body is empty; send a JSON object.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc.args[0] if exc.args else exc}") from exc
    if not isinstance(body, dict):
        raise InvalidRequest(f"The request body must be a JSON object, not a JSON {type(body).__name__}.")
    return body


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array of message objects.", param="messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise InvalidRequest(f"'messages[{i}]' must be an object.", param=f"messages[{i}]")
        role = m.get("role")
        if not isinstance(role, str) or role not in _ROLES:  # a list or object is unhashable: check type first
            raise InvalidRequest(
                f"'messages[{i}].role' must be one of {sorted(_ROLES)}, got {role!r}.",
                param=f"messages[{i}].role",
            )
        content = m.get("content")
        if isinstance(content, list):
            _check_parts(content, i)
        elif content is not None and not isinstance(content, str):
            raise InvalidRequest(
                f"'messages[{i}].content' must be a string or an array of content parts.",
                param=f"messages[{i}].content",
            )


def _check_parts(parts: list, i: int) -> None:
    """Each part an object with a known ``type`` and its payload: a malformed part made vLLM answer 500."""
    for j, part in enumerate(parts):
        where = f"messages[{i}].content[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        spec = _PARTS.get(kind) if isinstance(kind, str) else None
        if spec is None:
            raise InvalidRequest(
                f"'{where}' must be an object with a 'type' among {sorted(_PARTS)}.", param=f"{where}.type"
            )
        field, types = spec
        if not isinstance(part.get(field), types):
            kind_name = "a string" if types == (str,) else "an object"
            raise InvalidRequest(f"'{where}.{field}' must be {kind_name}.", param=f"{where}.{field}")


def _check_prompt(prompt: Any) -> None:
    ok = isinstance(prompt, str) or (
        isinstance(prompt, list)
        and prompt
        and (
            all(isinstance(p, str) for p in prompt)
            or all(isinstance(p, int) and not isinstance(p, bool) for p in prompt)
            or all(isinstance(p, list) and all(isinstance(t, int) for t in p) for p in prompt)
        )
    )
    if not ok:
        raise InvalidRequest(
            "'prompt' must be a string, an array of strings, or an array of token ids.", param="prompt"
        )


def _check_input(value: Any) -> None:
    if not (isinstance(value, str) or (isinstance(value, list) and value)):
        raise InvalidRequest("'input' must be a string or a non-empty array.", param="input")


def _check_numbers(body: dict[str, Any], route: str) -> None:
    for name, (types, lo, hi) in _NUMBERS.items():
        _check_number(body, name, types, lo, hi)
    if route in _LOGPROBS:
        _check_number(body, "logprobs", *_LOGPROBS[route])


def _check_number(body: dict[str, Any], name: str, types: tuple[type, ...], lo: float | None, hi: float | None) -> None:
    v = body.get(name)
    if v is None:
        return
    if (isinstance(v, bool) and bool not in types) or not isinstance(v, types):
        kind = {(int,): "an integer", (bool,): "true or false"}.get(types, "a number")
        raise InvalidRequest(f"'{name}' must be {kind}, got {orjson.dumps(v).decode()}.", param=name)
    if isinstance(v, bool):
        return
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        bounds = f"at least {lo}" if hi is None else f"between {lo} and {hi}"
        raise InvalidRequest(f"'{name}' must be {bounds}, got {v}.", param=name)
    if v <= 0 and name in _ABOVE_ZERO:
        raise InvalidRequest(f"'{name}' must be greater than 0, got {v}.", param=name)


def build_context(route: Route, body: dict[str, Any], request_id: str, session_id: str | None) -> RequestContext:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a non-empty string.", param="model")
    if len(model) > MAX_MODEL_NAME:  # the record keeps the name asked for, even an unknown one: keep it bounded
        raise InvalidRequest(f"'model' must be at most {MAX_MODEL_NAME} characters long.", param="model")
    if route == "chat":
        _check_messages(body.get("messages"))
    elif route == "completions":
        _check_prompt(body.get("prompt"))
    else:
        _check_input(body.get("input"))
        if body.get("messages") is not None:  # vLLM's chat-style embeddings: checked as a chat's, never passed on raw
            _check_messages(body["messages"])
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be true or false.", param="stream")
    if route == "embeddings":
        stream = False
    opts = body.get("stream_options")
    include_usage = False
    if opts is not None:
        if not stream:
            raise InvalidRequest("'stream_options' is only allowed when 'stream' is true.", param="stream_options")
        if not isinstance(opts, dict):
            raise InvalidRequest("'stream_options' must be an object.", param="stream_options")
        include_usage = bool(opts.get("include_usage"))
    rf = body.get("response_format")
    if rf is not None and not (isinstance(rf, dict) and isinstance(rf.get("type"), str)):
        raise InvalidRequest("'response_format' must be an object with a 'type'.", param="response_format")
    _check_numbers(body, route)
    return RequestContext(
        request_id=request_id,
        route=route,
        body=body,
        model=model,
        stream=stream,
        include_usage=include_usage,
        session_id=session_id,
    )


def affinity_text(ctx: RequestContext) -> str:
    """The text whose leading blocks key prefix affinity: the prompt as the model will see it, in order."""
    body = ctx.body
    if ctx.route == "chat":
        parts = []
        for m in body["messages"]:
            c = m.get("content")
            if isinstance(c, list):
                c = "".join(p.get("text", "") for p in c if isinstance(p, dict))
            parts.append(f"{m.get('role')}\x1f{c or ''}\x1e")
        return "".join(parts)
    if ctx.route == "completions":
        p = body["prompt"]
        return p if isinstance(p, str) else str(p[0]) if p else ""
    return ""
