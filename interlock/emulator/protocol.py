"""vLLM's wire shapes: error bodies, responses and stream chunks, built as plain dicts for orjson.

Checked against vllm-project/vllm (``entrypoints/openai/engine/protocol.py``, ``chat_completion/protocol.py``
and ``serving.py``, ``completion/protocol.py`` and ``serving.py``, ``api_server.py``):

* Errors are ``{"error": {"message", "type", "param", "code": <int status>}}``. Handlers use
  ``create_error_response``: ``type`` is ``BadRequestError`` (400) or ``NotFoundError`` (404, param
  ``model``, message "The model `X` does not exist."); body validation errors go through FastAPI's
  ``RequestValidationError`` handler, whose ``type`` is the status phrase ``Bad Request``.
  vLLM's error shape differs from OpenAI's (``code`` is the int status), which is why the emulator
  renders its own instead of using ``gateway.errors``: the gateway must cope with the real shape.
* Non-streamed responses are ``model_dump()``: every field, ``None`` included.
* Chat chunks are ``model_dump_json(exclude_unset=True)``: only fields vLLM set explicitly appear, so
  content chunks carry no ``usage`` key; the first chunk per choice has ``delta {role, content: ""}`` and
  ``prompt_token_ids: null``; the chunk with ``finish_reason`` also has ``stop_reason``.
* Completion chunks are ``model_dump_json(exclude_unset=False)``: every field, so ``usage: null`` too.
* The usage chunk (``stream_options.include_usage``) has ``choices: []`` and drops ``None`` fields.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import orjson

from interlock.emulator.generation import top_alternatives

DONE = b"data: [DONE]\n\n"

_ERROR_TYPES = {400: "BadRequestError", 404: "NotFoundError", 500: "InternalServerError", 501: "NotImplementedError"}


class VLLMError(Exception):
    """An error answered as vLLM answers it. ``type`` defaults to the name vLLM's handlers use for the status."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        type: str | None = None,
        param: str | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type or _ERROR_TYPES.get(status) or HTTPStatus(status).phrase
        self.param = param
        self.headers = headers or []

    def body(self) -> bytes:
        return orjson.dumps(
            {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.status}}
        )


def request_validation_error(message: str, param: str | None = None) -> VLLMError:
    """A body that fails vLLM's pydantic model (FastAPI's RequestValidationError handler)."""
    return VLLMError(message, status=400, type=HTTPStatus.BAD_REQUEST.phrase, param=param)


def model_not_found(model: str) -> VLLMError:
    return VLLMError(f"The model `{model}` does not exist.", status=404, param="model")


def sse(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


def usage(prompt: int, completion: int, *, drop_none: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "total_tokens": prompt + completion,
        "completion_tokens": completion,
    }
    if not drop_none:
        out["prompt_tokens_details"] = None
    return out


def chat_choice(
    index: int, content: str, finish_reason: str, stop_reason: str | None, logprobs: Any, tool_calls: list | None = None
) -> dict[str, Any]:
    message = {
        "role": "assistant",
        "content": None if tool_calls and not content else content,
        "refusal": None,
        "annotations": None,
        "audio": None,
        "function_call": None,
        "tool_calls": tool_calls or [],
        "reasoning": None,
    }
    return {
        "index": index,
        "message": message,
        "logprobs": logprobs,
        "finish_reason": finish_reason,
        "stop_reason": stop_reason,
        "token_ids": None,
    }


def chat_response(rid: str, created: int, model: str, choices: list, use: dict) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": choices,
        "service_tier": None,
        "system_fingerprint": None,
        "usage": use,
        "prompt_logprobs": None,
        "prompt_token_ids": None,
        "kv_transfer_params": None,
    }


def chat_chunk(rid: str, created: int, model: str, choice: dict[str, Any]) -> dict[str, Any]:
    return {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [choice]}


def chat_role_choice(index: int) -> dict[str, Any]:
    return {"index": index, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}


def chat_delta_choice(
    index: int, text: str, logprobs: Any, finish_reason: str | None = None, stop_reason: str | None = None
) -> dict[str, Any]:
    choice = {"index": index, "delta": {"content": text}, "logprobs": logprobs, "finish_reason": finish_reason}
    if finish_reason is not None:
        choice["stop_reason"] = stop_reason
    choice["token_ids"] = None
    return choice


def completion_choice(
    index: int, text: str, finish_reason: str | None, stop_reason: str | None, logprobs: Any, *, stream: bool
) -> dict[str, Any]:
    choice = {
        "index": index,
        "text": text,
        "logprobs": logprobs,
        "finish_reason": finish_reason,
        "stop_reason": stop_reason,
    }
    if stream:
        choice["prompt_token_ids"] = None
        choice["token_ids"] = None
    else:
        choice["token_ids"] = None
        choice["prompt_logprobs"] = None
        choice["prompt_token_ids"] = None
    return choice


def completion_response(rid: str, created: int, model: str, choices: list, use: dict) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": choices,
        "service_tier": None,
        "system_fingerprint": None,
        "usage": use,
        "kv_transfer_params": None,
    }


def completion_chunk(rid: str, created: int, model: str, choice: dict, use: dict | None = None) -> dict:
    return {
        "id": rid,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [choice],
        "usage": use,
    }


def usage_chunk(obj: str, rid: str, created: int, model: str, use: dict[str, Any]) -> dict[str, Any]:
    return {"id": rid, "object": obj, "created": created, "model": model, "choices": [], "usage": use}


def chat_logprobs(tokens: list[str], start: int, top: int) -> dict[str, Any]:
    """``logprobs`` of a chat choice (or chunk) for ``tokens`` generated from position ``start`` on."""
    content = []
    for k, token in enumerate(tokens):
        alternatives = top_alternatives(token, start + k, max(top, 1))
        content.append(
            {
                "token": token,
                "logprob": alternatives[0][1],
                "bytes": list(token.encode()),
                "top_logprobs": [
                    {"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in alternatives[:top]
                ],
            }
        )
    return {"content": content}


def completion_logprobs(tokens: list[str], start: int, text_offset: int, top: int) -> dict[str, Any]:
    """Legacy completions ``logprobs`` (``text_offset``, ``token_logprobs``, ``tokens``, ``top_logprobs``)."""
    offsets, values, tops = [], [], []
    for k, token in enumerate(tokens):
        alternatives = top_alternatives(token, start + k, max(top, 1))
        offsets.append(text_offset)
        text_offset += len(token)
        values.append(alternatives[0][1])
        tops.append(dict(alternatives[: max(top, 1)]))
    return {"text_offset": offsets, "token_logprobs": values, "tokens": list(tokens), "top_logprobs": tops}
