"""Virtual key operations, each run inside the store's transaction (see ``AccessStore``)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import timedelta

from sqlmodel import Session, col, select

from gateway.access._common import check_future, check_models, conflict, limits_of, set_limits
from gateway.access._team_ops import resolve_team
from gateway.access.keys import KEY_SCHEME, generate_key, hash_key, key_prefix
from gateway.access.models import ApiKey, Team, utc, utcnow
from gateway.access.schemas import KeyInfo, KeyPatch, KeySpec, KeyStatus, KeyWithSecret
from gateway.config import ModelConfig
from gateway.errors import InvalidRequest, NotFound


def new_id(kind: str) -> str:
    return f"{kind}_{secrets.token_hex(8)}"


def key_status(key: ApiKey) -> KeyStatus:
    if key.revoked_at is not None:
        return "revoked"
    expires = utc(key.expires_at)
    return "expired" if expires is not None and expires <= utcnow() else "active"


def key_info(s: Session, key: ApiKey) -> KeyInfo:
    team = s.get(Team, key.team_id) if key.team_id else None
    return KeyInfo(
        id=key.id,
        name=key.name,
        key_prefix=key.key_prefix,
        team_id=key.team_id,
        team_name=team.name if team else None,
        allowed_models=key.allowed_models,
        allowed_routes=key.allowed_routes,  # type: ignore[arg-type]
        limits=limits_of(key),
        expires_at=utc(key.expires_at),
        revoked_at=utc(key.revoked_at),
        rotated_at=utc(key.rotated_at),
        created_at=utc(key.created_at),
        updated_at=utc(key.updated_at),
        status=key_status(key),
        metadata=key.meta,
    )


def with_secret(s: Session, key: ApiKey, secret: str) -> KeyWithSecret:
    return KeyWithSecret(**key_info(s, key).model_dump(), key=secret)


def resolve_key(s: Session, ref: str) -> ApiKey:
    """A key by id, by the name of a live key, or by its visible prefix."""
    key = s.get(ApiKey, ref)
    if key is None:
        key = s.exec(select(ApiKey).where(ApiKey.name == ref, col(ApiKey.revoked_at).is_(None))).first()
    if key is None and ref.startswith(KEY_SCHEME):
        found = s.exec(select(ApiKey).where(ApiKey.key_prefix == key_prefix(ref))).all()
        if len(found) > 1:
            raise InvalidRequest(f"prefix {ref!r} matches {len(found)} keys: use the key id", param="key")
        key = found[0] if found else None
    if key is None:
        raise NotFound(f"key {ref!r} not found", param="key")
    return key


def _name_free(s: Session, name: str) -> None:
    if s.exec(select(ApiKey.id).where(ApiKey.name == name, col(ApiKey.revoked_at).is_(None))).first():
        raise conflict(f"name: a live key named {name!r} already exists", "name")


def _hash_free(s: Session, digest: str, param: str) -> None:
    taken = s.exec(select(ApiKey.id).where((ApiKey.key_hash == digest) | (ApiKey.previous_key_hash == digest))).first()
    if taken:
        raise conflict(f"{param}: this secret is already used by key {taken}", param)


def create_key(
    s: Session,
    yaml_models: Sequence[ModelConfig],
    spec: KeySpec,
    *,
    secret: str | None = None,
    digest: str | None = None,
    source: str = "api",
) -> tuple[ApiKey, str | None]:
    """Insert a key. A new secret is generated unless the seed gives one (``secret`` or ``digest``)."""
    _name_free(s, spec.name)
    team_id = resolve_team(s, spec.team).id if spec.team is not None else None
    check_models(s, yaml_models, spec.allowed_models)
    if secret is None and digest is None:
        secret = generate_key()
    digest = digest or hash_key(secret)  # type: ignore[arg-type]
    _hash_free(s, digest, "key")
    key = ApiKey(
        id=new_id("key"),
        name=spec.name,
        team_id=team_id,
        key_prefix=key_prefix(secret) if secret else KEY_SCHEME + "(hash)",
        key_hash=digest,
        allowed_models=spec.allowed_models,
        allowed_routes=spec.allowed_routes,
        meta=spec.metadata,
        expires_at=check_future(spec.expires_at),
        source=source,
    )
    set_limits(key, spec.limits, only_set=False)
    s.add(key)
    s.flush()
    return key, secret


def update_key(s: Session, yaml_models: Sequence[ModelConfig], ref: str, patch: KeyPatch) -> ApiKey:
    key = resolve_key(s, ref)
    if key.revoked_at is not None:
        raise InvalidRequest(f"key {key.name!r} is revoked and cannot be changed", param="key")
    fields = patch.model_fields_set
    if "name" in fields and patch.name is None:
        raise InvalidRequest("name: a key must have a name", param="name")
    if patch.name is not None and patch.name != key.name:
        _name_free(s, patch.name)
        key.name = patch.name
    if "team" in fields:
        key.team_id = resolve_team(s, patch.team).id if patch.team is not None else None
    if "allowed_models" in fields:
        check_models(s, yaml_models, patch.allowed_models)
        key.allowed_models = patch.allowed_models
    if "allowed_routes" in fields:
        key.allowed_routes = patch.allowed_routes  # type: ignore[assignment]
    if "limits" in fields and patch.limits is not None:
        set_limits(key, patch.limits, only_set=True)
    if "expires_at" in fields:
        key.expires_at = check_future(patch.expires_at)
    if "metadata" in fields:
        key.meta = patch.metadata or {}
    key.updated_at = utcnow()
    s.add(key)
    s.flush()
    return key


def rotate_key(s: Session, ref: str, grace_seconds: int) -> tuple[ApiKey, str]:
    """Give a key a new secret; the old one works for ``grace_seconds`` more (0: stops at once)."""
    key = resolve_key(s, ref)
    if key.revoked_at is not None:
        raise InvalidRequest(f"key {key.name!r} is revoked and cannot be rotated", param="key")
    secret = generate_key()
    now = utcnow()
    key.previous_key_hash = key.key_hash if grace_seconds else None
    key.previous_valid_until = now + timedelta(seconds=grace_seconds) if grace_seconds else None
    key.key_hash = hash_key(secret)
    key.key_prefix = key_prefix(secret)
    key.rotated_at = key.updated_at = now
    s.add(key)
    s.flush()
    return key, secret


def revoke_key(s: Session, ref: str) -> ApiKey:
    key = resolve_key(s, ref)
    if key.revoked_at is None:
        key.revoked_at = key.updated_at = utcnow()
        key.previous_key_hash = key.previous_valid_until = None
        s.add(key)
        s.flush()
    return key
