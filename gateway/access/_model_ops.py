"""Model override operations, each run inside the store's transaction (see ``AccessStore``)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, select

from gateway.access.catalog import check_fallbacks, dump_with_secrets, effective_models
from gateway.access.models import ModelOverride, utcnow
from gateway.access.schemas import ModelInfo
from gateway.config import ModelConfig
from gateway.errors import InvalidRequest, ModelNotFound


def _overrides(s: Session) -> dict[str, tuple[str, dict | None, bool]]:
    return {r.name: (r.name, r.config, r.deleted) for r in s.exec(select(ModelOverride)).all()}


def list_models(s: Session, yaml_models: Sequence[ModelConfig]) -> list[ModelInfo]:
    models, source = effective_models(yaml_models, _overrides(s).values())
    return [ModelInfo(name=m.name, source=source[m.name], config=m) for m in models]  # type: ignore[arg-type]


def get_model(s: Session, yaml_models: Sequence[ModelConfig], name: str) -> ModelInfo:
    for info in list_models(s, yaml_models):
        if info.name == name:
            return info
    raise ModelNotFound(f"model {name!r} not found", param="name")


def set_model(s: Session, yaml_models: Sequence[ModelConfig], name: str, config: ModelConfig) -> ModelInfo:
    """Add a model or replace one (YAML models included) with ``config``."""
    if config.name != name:
        raise InvalidRequest(f"name: the body names {config.name!r} but the path names {name!r}", param="name")
    stored = dump_with_secrets(config)
    overrides = _overrides(s)
    overrides[name] = (name, stored, False)
    models, _ = effective_models(yaml_models, overrides.values())
    check_fallbacks(models)
    row = s.get(ModelOverride, name) or ModelOverride(name=name)
    row.config, row.deleted, row.updated_at = stored, False, utcnow()
    s.add(row)
    s.flush()
    return ModelInfo(name=name, source="override", config=config)


def delete_model(s: Session, yaml_models: Sequence[ModelConfig], name: str) -> None:
    """Remove a model from the effective list (a YAML model stays removed until set again)."""
    stored = s.get(ModelOverride, name)
    if stored is None or stored.deleted:  # a stored row that no longer validates can still be deleted
        get_model(s, yaml_models, name)
    overrides = _overrides(s)
    overrides[name] = (name, None, True)
    models, _ = effective_models(yaml_models, overrides.values())
    users = [m.name for m in models if name in m.fallbacks]
    if users:
        raise InvalidRequest(
            f"model {name!r} is a fallback of {users}: change their fallbacks first",
            param=f"models[{users[0]}].fallbacks",
        )
    row = s.get(ModelOverride, name) or ModelOverride(name=name)
    row.config, row.deleted, row.updated_at = None, True, utcnow()
    s.add(row)
    s.flush()
