"""Create the teams and keys of the settings file that the database does not have yet."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence

from sqlmodel import Session, col, select

from gateway.access import _key_ops, _team_ops
from gateway.access.config import AccessConfig
from gateway.access.keys import KEY_SCHEME, key_prefix
from gateway.access.models import ApiKey, Team, utcnow
from gateway.access.schemas import KeySpec
from gateway.config import ModelConfig
from gateway.errors import ConfigError, InterlockError

log = logging.getLogger(__name__)


def seed(s: Session, yaml_models: Sequence[ModelConfig], access: AccessConfig) -> bool:
    """Apply the seed; returns whether anything changed. Errors name the settings key."""
    changed = False
    for i, spec in enumerate(access.teams):
        if s.exec(select(Team.id).where(Team.name == spec.name)).first() is None:
            with _as_config_error(f"access.teams[{i}]"):
                _team_ops.create_team(s, yaml_models, _key_ops.new_id("team"), spec, source="yaml")
            changed = True
    for i, cfg in enumerate(access.keys):
        digest = cfg.stored_hash()
        live = s.exec(select(ApiKey).where(ApiKey.name == cfg.name, col(ApiKey.revoked_at).is_(None))).first()
        with _as_config_error(f"access.keys[{i}]"):
            if live is None:
                spec = KeySpec.model_validate(cfg.model_dump(exclude={"key", "key_hash"}))
                secret = cfg.key.get_secret_value() if cfg.key else None
                _key_ops.create_key(
                    s, yaml_models, spec, secret=secret, digest=None if secret else digest, source="yaml"
                )
                changed = True
            elif live.key_hash != digest:
                # The file owns this key's secret: follow it, so the old secret stops working.
                log.info("access: key %r has a new secret in the settings; updating its hash", cfg.name)
                live.key_hash, live.updated_at = digest, utcnow()
                live.key_prefix = key_prefix(cfg.key.get_secret_value()) if cfg.key else KEY_SCHEME + "(hash)"
                s.add(live)
                changed = True
    s.flush()
    return changed


@contextlib.contextmanager
def _as_config_error(where: str) -> Iterator[None]:
    try:
        yield
    except ConfigError:
        raise
    except InterlockError as exc:
        raise ConfigError(f"{where}: {exc.message}", param=where) from exc
