"""Interlock's error hierarchy, rendered as OpenAI error JSON at one place (``to_openai``).

    InterlockError                      status, type, code, param, message
    ├── RequestError                    4xx the caller can fix
    │   ├── InvalidRequest              400 invalid_request_error (bad JSON, missing/wrong field)
    │   ├── UnsupportedMediaType        415
    │   ├── PayloadTooLarge             413
    │   ├── HeadersTooLarge             431 request headers above server.max_header_bytes
    │   ├── NotFound                    404 (unknown route)
    │   ├── MethodNotAllowed            405
    │   ├── ModelNotFound               404 model_not_found (the SDK raises NotFoundError)
    │   ├── AuthenticationFailed        401 (SDK AuthenticationError)
    │   ├── PermissionDenied            403 (SDK PermissionDeniedError)
    │   └── RateLimited                 429 with retry_after (SDK RateLimitError)
    │       └── BudgetExceeded          429 insufficient_quota, names the budget and its reset
    ├── UpstreamError                   something behind us failed
    │   ├── UpstreamUnavailable         503 no healthy deployment / circuit open / connect refused
    │   ├── UpstreamTimeout             504
    │   ├── UpstreamHTTPError           the upstream's status and message in our type/code (retry_after when sent)
    │   └── UpstreamProtocolError       502 the upstream answered garbage
    ├── ServiceUnavailable              503 a dependency of ours (Redis, database) is down and policy is fail-closed
    └── ConfigError                     bad configuration: stops startup, names the key

Status codes are chosen for the ``openai`` SDK class they become (openai/_exceptions.py):
400 BadRequestError, 401 AuthenticationError, 403 PermissionDeniedError, 404 NotFoundError,
413/415/431 APIStatusError, 429 RateLimitError, >=500 InternalServerError.
"""

from __future__ import annotations

import orjson


class InterlockError(Exception):
    status: int = 500
    type: str = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers: dict[str, str] = headers or {}

    def to_openai(self) -> dict:
        """The body OpenAI (and vLLM) send for an error."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def body(self) -> bytes:
        return orjson.dumps(self.to_openai())


class RequestError(InterlockError):
    status = 400
    type = "invalid_request_error"


class InvalidRequest(RequestError):
    pass


class UnsupportedMediaType(RequestError):
    status = 415
    code = "unsupported_media_type"


class PayloadTooLarge(RequestError):
    status = 413
    code = "payload_too_large"


class HeadersTooLarge(RequestError):
    status = 431
    code = "request_header_fields_too_large"


class NotFound(RequestError):
    status = 404
    code = "not_found"


class MethodNotAllowed(RequestError):
    status = 405
    code = "method_not_allowed"


class ModelNotFound(RequestError):
    status = 404
    code = "model_not_found"


class AuthenticationFailed(RequestError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(RequestError):
    status = 403
    type = "permission_error"
    code = "model_not_allowed"


class RateLimited(RequestError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after
        if retry_after is not None:
            # Retry-After is whole seconds; round up so a client never retries too early.
            self.headers.setdefault("retry-after", str(max(1, int(retry_after + 0.999))))


class BudgetExceeded(RateLimited):
    type = "insufficient_quota"
    code = "budget_exceeded"


class UpstreamError(InterlockError):
    status = 502
    type = "upstream_error"
    #: Whether trying again (same or another deployment) can help.
    retryable: bool = True


class UpstreamUnavailable(UpstreamError):
    status = 503
    code = "upstream_unavailable"


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"


class UpstreamHTTPError(UpstreamError):
    """The upstream answered with an error status; we pass its status and message on."""

    def __init__(self, status: int, body: bytes, *, retry_after: float | None = None) -> None:
        message, err_type, code, param = _parse_error_body(body, status)
        # Ours, not the upstream's shape: vLLM sends ``"type": "BadRequestError", "code": 400``. Clients match on
        # OpenAI's types and string codes, so only the message (and param) pass through as the upstream sent them.
        super().__init__(message, status=status, code=_openai_code(code), param=param)
        self.type = _openai_type(status, err_type, code)
        self.upstream_body = body
        self.retry_after = retry_after
        # 429 and 5xx may pass; other 4xx are the caller's fault and will fail the same way again.
        self.retryable = status == 429 or status >= 500


class UpstreamProtocolError(UpstreamError):
    status = 502
    code = "bad_upstream_response"


class ServiceUnavailable(InterlockError):
    status = 503
    type = "service_unavailable"


class ConfigError(InterlockError):
    status = 500
    type = "config_error"


def _parse_error_body(body: bytes, status: int) -> tuple[str, str, str | None, str | None]:
    try:
        data = orjson.loads(body)
        err = data.get("error", data) if isinstance(data, dict) else None
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            code = err.get("code")
            return (
                err["message"],
                str(err.get("type") or "upstream_error"),
                str(code) if isinstance(code, (str, int)) and not isinstance(code, bool) else None,
                err.get("param") if isinstance(err.get("param"), str) else None,
            )
        if isinstance(data, dict) and isinstance(data.get("detail"), str):  # FastAPI-style servers
            return data["detail"], "upstream_error", None, None
    except (orjson.JSONDecodeError, AttributeError, TypeError):
        pass
    text = body[:200].decode("utf-8", "replace").strip() or "no body"
    return f"upstream returned HTTP {status}: {text}", "upstream_error", None, None


#: The ``type`` OpenAI sends with each 4xx status; other 4xx are ``invalid_request_error`` too.
_TYPES_4XX = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}


def _openai_type(status: int, upstream_type: str, upstream_code: str | None) -> str:
    if status == 429 and "insufficient_quota" in (upstream_type, upstream_code):
        return "insufficient_quota"  # a provider's quota, which the SDK user handles differently from a 429
    if 400 <= status < 500:
        return _TYPES_4XX.get(status, "invalid_request_error")
    return UpstreamError.type


def _openai_code(code: str | None) -> str | None:
    """A string code as OpenAI sends (``model_not_found``); a number (vLLM repeats the status) becomes null."""
    if code is None or code.lstrip("-").isdigit():
        return None
    return code
