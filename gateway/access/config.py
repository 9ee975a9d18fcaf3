"""The ``access`` section of the settings tree: key enforcement, admin credentials and the YAML seed.

Teams and keys listed here are created at startup when the database does not have them yet (teams
matched by name, keys by name). After that the database wins: changes made through the admin API
survive restarts. The one exception is a key's secret: when the file gives a different hash or key
for a key of the same name, the stored hash follows the file (that is how an environment-provided
secret is rotated).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from gateway.access.keys import hash_key
from gateway.access.schemas import KeySpec, TeamSpec, _Strict

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class TeamConfig(TeamSpec):
    """A team to create at startup (same fields as ``POST /admin/teams``)."""


class KeyConfig(KeySpec):
    """A key to create at startup. Give exactly one of ``key_hash`` or ``key``."""

    key_hash: str | None = None
    """Hex SHA-256 of the full key (``interlock keys hash`` prints it); the safe form for files."""
    key: SecretStr | None = None
    """The full key itself, meant to arrive through the environment rather than sit in a file."""

    @model_validator(mode="after")
    def _one_secret(self) -> KeyConfig:
        if (self.key_hash is None) == (self.key is None):
            raise ValueError(f"key {self.name!r}: give exactly one of key_hash or key")
        if self.key_hash is not None and not _SHA256.match(self.key_hash):
            raise ValueError(f"key {self.name!r}: key_hash must be 64 lowercase hex characters (SHA-256)")
        return self

    def stored_hash(self) -> str:
        return self.key_hash or hash_key(self.key.get_secret_value())  # type: ignore[union-attr]


class AccessConfig(_Strict):
    """Who may call models and who may administer the gateway."""

    require_keys: bool = False
    """``true``: every model call needs a virtual key (or the master key). ``false`` (embedded default):
    calls without a key, or with a placeholder that is not an ``sk-il-`` key (the OpenAI SDK insists on
    sending one), are served as anonymous; an ``sk-il-`` key that is sent is still checked."""
    master_key: SecretStr | None = None
    """A key that may call every model and also acts as admin credential for the admin API."""
    admin_tokens: dict[str, Literal["admin", "viewer"]] = Field(default_factory=dict)
    """Admin API bearer tokens and their roles (``admin``: everything, ``viewer``: read only). A token
    written as ``sha256:<hex>`` is matched by its hash, so the file need not hold the secret."""
    teams: list[TeamConfig] = Field(default_factory=list)
    """Teams created at startup if absent."""
    keys: list[KeyConfig] = Field(default_factory=list)
    """Virtual keys created at startup if absent."""
    poll_interval: float = Field(0.5, gt=0, le=1.0)
    """Seconds between checks of the configuration version in the database when Redis pub/sub is not
    available (and after it drops); admin changes reach every replica within this long."""

    bus_channel: str = "interlock:config"
    """Redis pub/sub channel for configuration changes. Deployments sharing one Redis server need
    distinct channels (a replica ignores messages its own database does not confirm, but pays a reload)."""

    @model_validator(mode="after")
    def _check_seed(self) -> AccessConfig:
        for label, names in (("teams", [t.name for t in self.teams]), ("keys", [k.name for k in self.keys])):
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f"access.{label}: names must be unique, repeated: {dup}")
        teams = {t.name for t in self.teams}
        for i, key in enumerate(self.keys):
            if key.team is not None and key.team not in teams:
                raise ValueError(f"access.keys[{i}].team: unknown team {key.team!r} (define it in access.teams)")
        return self
