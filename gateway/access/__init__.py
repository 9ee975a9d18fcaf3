"""Access control: virtual keys and teams, the admin credentials, and live configuration changes.

Public API (see ``AGENTS.md`` for the conventions of this package)::

    runtime = AccessRuntime(settings.access, engine, settings.models, redis_url=settings.redis.url)
    await runtime.start()
    principal = runtime.authenticator.authenticate(headers.get("authorization"))   # 401
    runtime.authenticator.authorize(principal, model, route)                     # 403
    runtime.on_models_changed(swap_model_table); runtime.models
    await runtime.store.create_key(KeySpec(name="app")) -> KeyWithSecret
"""

import importlib
from typing import TYPE_CHECKING, Any

# Exports load on first use: ``interlock.settings`` imports ``gateway.access.config``, and that must
# not drag in SQLAlchemy, Alembic and Redis for every ``interlock`` command.
_EXPORTS: dict[str, str] = {
    "AdminTokens": "admin_auth",
    "Role": "admin_auth",
    "MASTER_KEY_ID": "authenticator",
    "Authenticator": "authenticator",
    "KeyEntry": "authenticator",
    "CHANNEL": "bus",
    "Change": "bus",
    "ConfigBus": "bus",
    "AccessConfig": "config",
    "KeyConfig": "config",
    "TeamConfig": "config",
    "generate_key": "keys",
    "hash_key": "keys",
    "key_prefix": "keys",
    "AccessRuntime": "runtime",
    "ModelsCallback": "runtime",
    "KeyInfo": "schemas",
    "KeyPatch": "schemas",
    "KeySpec": "schemas",
    "KeyWithSecret": "schemas",
    "LimitsSpec": "schemas",
    "ModelInfo": "schemas",
    "RotateRequest": "schemas",
    "TeamInfo": "schemas",
    "TeamPatch": "schemas",
    "TeamSpec": "schemas",
    "AccessStore": "store",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gateway.access' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"gateway.access.{module}"), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from gateway.access.admin_auth import AdminTokens, Role
    from gateway.access.authenticator import MASTER_KEY_ID, Authenticator, KeyEntry
    from gateway.access.bus import CHANNEL, Change, ConfigBus
    from gateway.access.config import AccessConfig, KeyConfig, TeamConfig
    from gateway.access.keys import generate_key, hash_key, key_prefix
    from gateway.access.runtime import AccessRuntime, ModelsCallback
    from gateway.access.schemas import (
        KeyInfo,
        KeyPatch,
        KeySpec,
        KeyWithSecret,
        LimitsSpec,
        ModelInfo,
        RotateRequest,
        TeamInfo,
        TeamPatch,
        TeamSpec,
    )
    from gateway.access.store import AccessStore

__all__ = [
    "CHANNEL",
    "MASTER_KEY_ID",
    "AccessConfig",
    "AccessRuntime",
    "AccessStore",
    "AdminTokens",
    "Authenticator",
    "Change",
    "ConfigBus",
    "KeyConfig",
    "KeyEntry",
    "KeyInfo",
    "KeyPatch",
    "KeySpec",
    "KeyWithSecret",
    "LimitsSpec",
    "ModelInfo",
    "ModelsCallback",
    "Role",
    "RotateRequest",
    "TeamConfig",
    "TeamInfo",
    "TeamPatch",
    "TeamSpec",
    "generate_key",
    "hash_key",
    "key_prefix",
]
