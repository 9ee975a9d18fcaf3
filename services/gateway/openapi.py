"""The model API's OpenAPI document, served at ``GET /openapi.json``.

Written by hand because the model routes are raw ASGI (no framework to derive it from). It states what
``gateway/requests.py`` checks, with the same bounds (a body outside them is a 400 naming the field), and every
status the gateway answers. Unknown request fields are allowed: they pass through to the upstream untouched.
``tests/e2e/gateway/test_fuzz.py`` runs schemathesis over this document against a running gateway.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.requests import MAX_LOGPROBS, MAX_MODEL_NAME

_REF = "#/components/schemas/"
_INT64 = {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _part(kind: str, field: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": ["type", field], "properties": {"type": {"const": kind}, field: schema}}


_OBJECT_OR_URL = {"anyOf": [{"type": "object"}, {"type": "string"}]}
_SAMPLING: dict[str, Any] = {
    "stream": {"type": ["boolean", "null"]},
    "stream_options": {
        "type": ["object", "null"],
        "description": "Only with stream: true.",
        "properties": {"include_usage": {"type": "boolean"}},
    },
    "temperature": {"type": "number", "minimum": 0, "maximum": 2},
    "top_p": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
    "min_p": {"type": "number", "minimum": 0, "maximum": 1},
    "repetition_penalty": {"type": "number", "exclusiveMinimum": 0},
    "min_tokens": {"type": "integer", "minimum": 0},
    "top_k": {"type": "integer", "minimum": -1},
    "n": {"type": "integer", "minimum": 1, "maximum": 128},
    "max_tokens": {"type": "integer", "minimum": 1},
    "seed": _INT64,
    "presence_penalty": {"type": "number", "minimum": -2, "maximum": 2},
    "frequency_penalty": {"type": "number", "minimum": -2, "maximum": 2},
    "response_format": {"type": "object", "required": ["type"], "properties": {"type": {"type": "string"}}},
}
_MODEL = {"type": "string", "minLength": 1, "maxLength": MAX_MODEL_NAME, "description": "A configured model name."}

SCHEMAS: dict[str, Any] = {
    "ContentPart": {
        "anyOf": [
            _part("text", "text", {"type": "string"}),
            _part("input_text", "text", {"type": "string"}),
            _part("refusal", "refusal", {"type": "string"}),
            _part("image_url", "image_url", _OBJECT_OR_URL),
            _part("input_image", "image_url", _OBJECT_OR_URL),
            _part("input_audio", "input_audio", {"type": "object"}),
            _part("audio_url", "audio_url", _OBJECT_OR_URL),
            _part("video_url", "video_url", _OBJECT_OR_URL),
            _part("file", "file", {"type": "object"}),
        ]
    },
    "Message": {
        "type": "object",
        "required": ["role"],
        "properties": {
            "role": {"enum": ["system", "user", "assistant", "tool", "function", "developer"]},
            "content": {
                "anyOf": [{"type": "string"}, {"type": "array", "items": _ref("ContentPart")}, {"type": "null"}]
            },
        },
    },
    "ChatCompletionRequest": {
        "type": "object",
        "required": ["model", "messages"],
        "properties": {
            "model": _MODEL,
            "messages": {"type": "array", "minItems": 1, "items": _ref("Message")},
            **_SAMPLING,
            "max_completion_tokens": {"type": "integer", "minimum": 1},
            "logprobs": {"type": "boolean"},
            "top_logprobs": {"type": "integer", "minimum": 0, "maximum": MAX_LOGPROBS},
        },
    },
    "CompletionRequest": {
        "type": "object",
        "required": ["model", "prompt"],
        "properties": {
            "model": _MODEL,
            "prompt": {
                "anyOf": [
                    {"type": "string"},
                    {"type": "array", "minItems": 1, "items": {"type": "string"}},
                    {"type": "array", "minItems": 1, "items": {"type": "integer"}},
                    {"type": "array", "minItems": 1, "items": {"type": "array", "items": {"type": "integer"}}},
                ]
            },
            **_SAMPLING,
            "logprobs": {"type": "integer", "minimum": 0, "maximum": MAX_LOGPROBS},
        },
    },
    "EmbeddingRequest": {
        "type": "object",
        "required": ["model", "input"],
        "properties": {"model": _MODEL, "input": {"anyOf": [{"type": "string"}, {"type": "array", "minItems": 1}]}},
    },
    "Completion": {"type": "object", "required": ["choices"], "properties": {"choices": {"type": "array"}}},
    "EmbeddingList": {"type": "object", "required": ["data"], "properties": {"data": {"type": "array"}}},
    "ModelList": {"type": "object", "required": ["object", "data"], "properties": {"data": {"type": "array"}}},
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message", "type", "param", "code"],
                "properties": {
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                    "param": {"type": ["string", "null"]},
                    "code": {"type": ["string", "null"]},
                },
            }
        },
    },
}

#: Every status the model routes answer besides 200, and when.
ERRORS = {
    "400": "Invalid body: the message and `param` name the field (also an upstream's 4xx, in this shape)",
    "401": "Missing or unknown API key",
    "403": "The key may not use this model or route",
    "404": "Unknown model",
    "413": "Body above server.max_body_bytes",
    "415": "Content-Type is not application/json",
    "422": "An upstream refused the request (relayed in this shape)",
    "429": "A rate limit or budget is exhausted (Retry-After says when to retry)",
    "431": "Request headers above server.max_header_bytes",
    "500": "An upstream failed (its status relayed, in this shape); never the gateway itself",
    "502": "The upstream answered garbage",
    "503": "No healthy deployment, or a dependency (Redis, database) is down with a fail-closed policy",
    "504": "The upstream timed out",
}


def _operation(summary: str, request: str, answer: str, *, streams: bool) -> dict[str, Any]:
    ok: dict[str, Any] = {"application/json": {"schema": _ref(answer)}}
    if streams:
        ok["text/event-stream"] = {"schema": {"type": "string"}}
    error = {"application/json": {"schema": _ref("Error")}}
    return {
        "post": {
            "summary": summary,
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(request)}}},
            "responses": {
                "200": {"description": "The upstream's answer (server-sent events when stream is true)", "content": ok},
                **{status: {"description": why, "content": error} for status, why in ERRORS.items()},
            },
        }
    }


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Interlock model API", "version": "1", "description": "OpenAI-compatible."},
        "paths": {
            "/v1/chat/completions": _operation("Chat", "ChatCompletionRequest", "Completion", streams=True),
            "/v1/completions": _operation("Text completion", "CompletionRequest", "Completion", streams=True),
            "/v1/embeddings": _operation("Embeddings", "EmbeddingRequest", "EmbeddingList", streams=False),
            "/v1/models": {
                "get": {
                    "summary": "Models this key may use",
                    "responses": {
                        "200": {
                            "description": "The list",
                            "content": {"application/json": {"schema": _ref("ModelList")}},
                        },
                        "401": {
                            "description": ERRORS["401"],
                            "content": {"application/json": {"schema": _ref("Error")}},
                        },
                    },
                }
            },
        },
        "components": {"schemas": SCHEMAS},
    }


#: Serialised once: served as is.
BODY = orjson.dumps(document())
