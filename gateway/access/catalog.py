"""The effective model list: the YAML models overlaid by the overrides stored through the admin API.

An override replaces the YAML model of its name wholesale (or adds a new model); a deleted override
removes it. The result is checked like the settings file: unique names, fallbacks that exist.

A stored override that no longer validates (written before a check existed, or by hand) is skipped, not
fatal: the model falls back to its YAML entry, if any, and the problem is reported through ``errors``.
Raising instead would stop every replica from applying this and every later change, and stop a
gateway from starting at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError

from gateway.config import ModelConfig
from gateway.errors import InvalidRequest


def effective_models(
    yaml_models: Sequence[ModelConfig],
    overrides: Iterable[tuple[str, dict[str, Any] | None, bool]],
    errors: dict[str, str] | None = None,
) -> tuple[list[ModelConfig], dict[str, str]]:
    """Overlay ``(name, config, deleted)`` overrides on the YAML models.

    Returns the models in a stable order (YAML order, then added models by name) and each one's
    source (``yaml`` or ``override``). Overrides that do not validate are skipped; ``errors``, when
    given, receives ``{name: what is wrong}`` for each.
    """
    merged: dict[str, ModelConfig] = {m.name: m for m in yaml_models}
    source = dict.fromkeys(merged, "yaml")
    for name, config, deleted in sorted(overrides, key=lambda o: o[0]):
        if deleted or config is None:
            merged.pop(name, None)
            source.pop(name, None)
        else:
            try:
                model = ModelConfig.model_validate(config)
                if model.name != name:  # the row's key is the name routes and grants use
                    raise ValueError(f"the stored config names {model.name!r}")
            except (ValidationError, TypeError, ValueError) as exc:
                if errors is not None:
                    errors[name] = describe_invalid(exc)
                continue
            merged[name] = model
            source[name] = "override"
    return list(merged.values()), source


def describe_invalid(exc: Exception) -> str:
    """What is wrong, naming the fields but never echoing values (a stored config may hold an api_key)."""
    if not isinstance(exc, ValidationError):
        return str(exc) if isinstance(exc, ValueError) else f"invalid stored configuration ({type(exc).__name__})"
    problems = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        problems.append(f"{loc}: {err['msg']}")
    return "; ".join(problems)


def check_fallbacks(models: Sequence[ModelConfig]) -> None:
    """Refuse a model list whose fallbacks name missing models, naming the model and field."""
    names = {m.name for m in models}
    for m in models:
        missing = [f for f in m.fallbacks if f not in names]
        if missing:
            raise InvalidRequest(
                f"models[{m.name}].fallbacks: unknown model(s) {missing}", param=f"models[{m.name}].fallbacks"
            )


def dump_with_secrets(config: ModelConfig) -> dict[str, Any]:
    """JSON-ready dict of a model config that keeps secret values (``model_dump`` would mask them)."""
    return _unwrap(config.model_dump(mode="python"))


def _unwrap(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, BaseModel):
        return _unwrap(value.model_dump(mode="python"))
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_unwrap(v) for v in value]
    return value
