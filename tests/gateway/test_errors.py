"""Errors relayed from an upstream leave in our shape: OpenAI's ``type`` for the status, a string or null ``code``,
the upstream's message and param kept."""

from __future__ import annotations

import orjson
import pytest

from gateway.errors import UpstreamHTTPError


def sent(type_: object = None, code: object = None, param: str | None = None) -> dict:
    """An upstream's error body with message ``m``."""
    return {"error": {"message": "m", "type": type_, "param": param, "code": code}}


@pytest.mark.parametrize(
    ("status", "body", "shape"),
    [
        (400, sent("BadRequestError", 400, param="n"), ("invalid_request_error", "n", None)),
        (404, sent("NotFoundError", 404), ("invalid_request_error", None, None)),
        (404, sent("invalid_request_error", "model_not_found"), ("invalid_request_error", None, "model_not_found")),
        (401, sent("Unauthorized", "401"), ("authentication_error", None, None)),
        (403, {"error": {"message": "m"}}, ("permission_error", None, None)),
        (429, sent("rate_limit_error", "rate_limit_exceeded"), ("rate_limit_error", None, "rate_limit_exceeded")),
        (429, sent("insufficient_quota", "insufficient_quota"), ("insufficient_quota", None, "insufficient_quota")),
        (500, sent("InternalServerError", 500), ("upstream_error", None, None)),
        (400, sent(code={"nested": 1}), ("invalid_request_error", None, None)),
        (400, {"detail": "m"}, ("invalid_request_error", None, None)),
    ],
)
def test_when_an_upstream_error_is_relayed_then_it_has_openais_type_and_a_string_or_null_code(status, body, shape):
    error = UpstreamHTTPError(status, orjson.dumps(body)).to_openai()["error"]
    assert (error["type"], error["param"], error["code"]) == shape
    assert error["message"] == "m"


def test_when_the_upstream_body_is_not_json_then_the_message_quotes_it():
    error = UpstreamHTTPError(502, b"<html>bad gateway</html>").to_openai()["error"]
    assert error["message"] == "upstream returned HTTP 502: <html>bad gateway</html>"
    assert (error["type"], error["code"]) == ("upstream_error", None)
