"""Commercial providers through litellm (OpenAI, Anthropic, Gemini, Bedrock, ...).

litellm is imported only when a ``kind: litellm`` deployment is built: it takes seconds to import and is not on
the fast path. Its answers are OpenAI-shaped pydantic objects; we serialise them to the same bytes our native path
passes through, so everything after the upstream step sees one format.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from gateway.config import DeploymentConfig, TimeoutConfig
from gateway.errors import (
    UpstreamError,
    UpstreamHTTPError,
    UpstreamProtocolError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.types import UpstreamRequest, UpstreamResponse, Usage
from gateway.upstreams.sse import usage_from

_litellm: Any = None


def _load() -> Any:
    global _litellm
    if _litellm is None:
        # Use the price map shipped in the package: litellm otherwise fetches it from the internet at import.
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm

        litellm.suppress_debug_info = True
        litellm.drop_params = True
        _litellm = litellm
    return _litellm


def _translate(name: str, exc: Exception) -> UpstreamError:
    """litellm's exceptions (OpenAI-SDK style, with ``status_code``) become ours."""
    lt = _load()
    if isinstance(exc, lt.Timeout):
        return UpstreamTimeout(f"upstream {name} timed out")
    if isinstance(exc, lt.APIConnectionError):
        return UpstreamUnavailable(f"cannot reach upstream {name}: {getattr(exc, 'message', exc)}")
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and status >= 400:
        body = orjson.dumps({"error": {"message": str(getattr(exc, "message", exc)), "type": "upstream_error"}})
        retry_after = None
        response = getattr(exc, "response", None)
        if response is not None and getattr(response, "headers", None) is not None:
            try:
                retry_after = float(response.headers.get("retry-after"))
            except (TypeError, ValueError):
                retry_after = None
        return UpstreamHTTPError(status, body, retry_after=retry_after)
    return UpstreamProtocolError(f"upstream {name} failed: {type(exc).__name__}")


class LiteLLMUpstream:
    """One provider deployment served through ``litellm.acompletion`` / ``atext_completion`` / ``aembedding``."""

    def __init__(self, config: DeploymentConfig, public_model: str, timeouts: TimeoutConfig) -> None:
        assert config.model and config.name
        self.name = config.name
        self.model = config.model
        self._params: dict[str, Any] = {**config.litellm_params, "timeout": timeouts.total}
        if config.api_key is not None:
            self._params["api_key"] = config.api_key.get_secret_value()
        if config.url:
            self._params.setdefault("api_base", config.url + "/v1")
        _load()

    async def send(self, request: UpstreamRequest):
        lt = _load()
        body = {k: v for k, v in request.body.items() if k not in ("model", "stream", "stream_options")}
        kwargs = {**self._params, **body, "model": self.model}
        try:
            if request.route == "embeddings":
                result = await lt.aembedding(**kwargs)
            elif request.route == "completions":
                result = await lt.atext_completion(
                    **kwargs,
                    stream=request.stream,
                    **({"stream_options": {"include_usage": True}} if request.stream else {}),
                )
            else:
                result = await lt.acompletion(
                    **kwargs,
                    stream=request.stream,
                    **({"stream_options": {"include_usage": True}} if request.stream else {}),
                )
        except UpstreamError:
            raise
        except Exception as exc:  # litellm raises many types; all are translated at this one seam
            raise _translate(self.name, exc) from exc
        if request.stream:
            return _LiteLLMStream(self.name, result)
        obj = result.model_dump(exclude_none=False)
        obj.pop("_hidden_params", None)
        return UpstreamResponse(200, orjson.dumps(obj, default=str), usage_from(obj))

    async def health(self) -> bool:
        return True  # hosted providers: passive checks (the circuit breaker) are the signal

    async def aclose(self) -> None:
        pass


class _LiteLLMStream:
    def __init__(self, name: str, wrapper: Any) -> None:
        self.name = name
        self.usage: Usage | None = None
        self._wrapper = wrapper
        self._started = time.monotonic()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._wrapper:
                obj = chunk.model_dump(exclude_none=True)
                usage = usage_from(obj)
                if usage is not None:
                    self.usage = usage
                    obj["usage"] = {
                        "prompt_tokens": usage.prompt_tokens,
                        "completion_tokens": usage.completion_tokens,
                        "total_tokens": usage.total_tokens,
                    }
                yield orjson.dumps(obj, default=str)
        except UpstreamError:
            raise
        except Exception as exc:
            raise _translate(self.name, exc) from exc

    async def aclose(self) -> None:
        close = getattr(self._wrapper, "aclose", None)
        if close is not None:
            with contextlib.suppress(Exception):  # closing a provider stream must never fail the request
                await close()
