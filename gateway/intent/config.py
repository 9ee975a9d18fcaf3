"""The ``router`` settings section: intent routers in YAML, where decisions are made, context windows."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from router.intent import ModelContext, RouterDefinition


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HandoffConfig(_Section):
    webhook_url: str | None = None
    """POSTed a JSON event for every human handoff (router, intent, queue, request id, key, team)."""
    webhook_timeout: float = Field(2.0, gt=0)
    include_messages: bool = False
    """Also send the conversation to the webhook (it is the customer's own system; never stored by us)."""


class IntentRouterConfig(_Section):
    mode: Literal["embedded", "service"] = "embedded"
    """``embedded``: decide in each gateway process (one shared embedding per request). ``service``: ask the
    router service at ``service_url`` (``interlock router serve``)."""
    service_url: str | None = None
    service_timeout: float = Field(1.0, gt=0)
    """Seconds a decision may take in service mode before the fallback applies."""
    fallback_model: str | None = None
    """Where a router's traffic goes while no decision can be had (service down); unset: 503."""
    routers: dict[str, RouterDefinition] = Field(default_factory=dict)
    """Routers defined in this file, by name; trained at startup unless the database holds the same definition.
    The admin API (``PUT /admin/routers/{name}``) overrides them."""
    models: dict[str, ModelContext] = Field(default_factory=dict)
    """Context window (and tokenizer) of each model a router may send to, for the context-length check."""
    on_overflow: list[Literal["larger_model", "truncate"]] = Field(default_factory=lambda: ["larger_model", "truncate"])
    """What to try, in order, when prompt + ``max_tokens`` exceeds the target's window; nothing fits: 400."""
    assumed_max_tokens: int = Field(256, ge=1)
    """Completion tokens counted when the request sets no ``max_tokens``."""
    handoff: HandoffConfig = Field(default_factory=HandoffConfig)

    @field_validator("service_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v
