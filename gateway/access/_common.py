"""Helpers shared by the store's operations: grants checks, limit merging, row lookups."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, select

from gateway.access.catalog import effective_models
from gateway.access.models import ModelOverride, utc, utcnow
from gateway.access.schemas import LimitsSpec
from gateway.config import ModelConfig
from gateway.errors import InvalidRequest


def conflict(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param, code="conflict", status=409)


def model_names(s: Session, yaml_models: Sequence[ModelConfig]) -> set[str]:
    """Names of the effective models as the database has them now (other replicas included)."""
    rows = s.exec(select(ModelOverride)).all()
    models, _ = effective_models(yaml_models, [(r.name, r.config, r.deleted) for r in rows])
    return {m.name for m in models}


def router_names(s: Session) -> set[str]:
    """Intent routers (``gateway/intent``): clients name them as ``model``, so grants may name them too."""
    return set(s.connection().execute(sa.text("SELECT name FROM intent_routers")).scalars())


def check_models(s: Session, yaml_models: Sequence[ModelConfig], wanted: list[str] | None) -> None:
    """Refuse grants naming a model the gateway does not serve: almost always a typo."""
    if wanted is None:
        return
    unknown = sorted(set(wanted) - model_names(s, yaml_models) - router_names(s))
    if unknown:
        raise InvalidRequest(f"allowed_models: unknown model(s) {unknown}", param="allowed_models")


def check_future(expires_at: datetime | None) -> datetime | None:
    expires_at = utc(expires_at)
    if expires_at is not None and expires_at <= utcnow():
        raise InvalidRequest("expires_at: must be in the future", param="expires_at")
    return expires_at


def set_limits(row: object, limits: LimitsSpec, *, only_set: bool) -> None:
    """Copy limits onto a row's columns; with ``only_set`` just the fields the caller sent."""
    names = limits.model_fields_set if only_set else LimitsSpec.model_fields.keys()
    for name in names:
        setattr(row, name, getattr(limits, name))


def limits_of(row: object) -> LimitsSpec:
    return LimitsSpec(**{name: getattr(row, name) for name in LimitsSpec.model_fields})
