"""Upstreams: where a request is finally sent. One ``Upstream`` per deployment, built from its ``kind``."""

from __future__ import annotations

from gateway.config import DeploymentConfig, TimeoutConfig
from gateway.types import Upstream
from gateway.upstreams._http import HTTPPool
from gateway.upstreams.openai_compatible import OpenAICompatibleUpstream, SSEStream, parse_vllm_metrics


def _native(config: DeploymentConfig, public_model: str, http: HTTPPool, timeouts: TimeoutConfig) -> Upstream:
    return OpenAICompatibleUpstream(config, public_model, http, timeouts)


def _litellm(config: DeploymentConfig, public_model: str, http: HTTPPool, timeouts: TimeoutConfig) -> Upstream:
    from gateway.upstreams.litellm import LiteLLMUpstream  # lazy: litellm costs seconds to import

    return LiteLLMUpstream(config, public_model, timeouts)


#: Registry: deployment ``kind`` -> factory.
UPSTREAMS = {"vllm": _native, "openai": _native, "litellm": _litellm}


def build_upstream(config: DeploymentConfig, public_model: str, http: HTTPPool, timeouts: TimeoutConfig) -> Upstream:
    return UPSTREAMS[config.kind](config, public_model, http, timeouts)


__all__ = ["UPSTREAMS", "HTTPPool", "OpenAICompatibleUpstream", "SSEStream", "build_upstream", "parse_vllm_metrics"]
