"""``Authenticator``: who is calling and may they use this model, from memory, in microseconds.

All keys live in a dict keyed by their SHA-256 hash, with grants already intersected with the team's
and frozen at load time, so a request costs one hash, one dict lookup and a set membership test: no
database or Redis round trip. ``apply`` (the ``ConfigBus`` handler) builds a new state and assigns
it in one step; a request that already looked up its key keeps what it found.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from gateway.access.bus import Change
from gateway.access.config import AccessConfig
from gateway.access.keys import hash_key, is_virtual_key, key_prefix
from gateway.access.models import ApiKey, Team, utc
from gateway.access.store import AccessStore
from gateway.errors import AuthenticationFailed, PermissionDenied
from gateway.types import Limits, Principal

MASTER_KEY_ID = "master"


@dataclass(frozen=True, slots=True)
class _TeamEntry:
    models: frozenset[str] | None
    routes: frozenset[str] | None
    limits: Limits | None
    cache: dict | None = None


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """One accepted secret of a key, everything precomputed."""

    key_id: str
    key_name: str
    team_id: str | None
    allowed_models: frozenset[str] | None
    allowed_routes: frozenset[str] | None
    key_limits: Limits | None
    team_limits: Limits | None
    expires_at: float | None
    """Epoch seconds after which this secret is refused (key expiry, or the end of a rotation's grace)."""
    rotated_out: bool = False
    cache: tuple[dict, ...] | None = None
    """``metadata.cache`` of the key, then of its team, parsed (see ``cache.config.parse_overrides``)."""


@dataclass(slots=True)
class _State:
    by_hash: dict[str, KeyEntry] = field(default_factory=dict)
    by_id: dict[str, KeyEntry] = field(default_factory=dict)
    hashes_of: dict[str, tuple[str, ...]] = field(default_factory=dict)
    revoked: dict[str, str] = field(default_factory=dict)
    teams: dict[str, _TeamEntry] = field(default_factory=dict)


def _cache_overrides(metadata: dict | None) -> dict | None:
    """Parsed ``metadata.cache``; one that no longer validates (written before a change) is ignored."""
    from cache.config import parse_overrides

    try:
        return parse_overrides(metadata)
    except ValueError:
        return None


def _cache_layers(*layers: dict | None) -> tuple[dict, ...] | None:
    found = tuple(layer for layer in layers if layer is not None)
    return found or None


def _meet(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
    """Intersection where ``None`` means "everything"."""
    if a is None:
        return b
    return a if b is None else a & b


def _frozen(values: list[str] | None) -> frozenset[str] | None:
    return None if values is None else frozenset(values)


def _limits(row: ApiKey | Team) -> Limits | None:
    values = row.limit_values()
    return None if all(v is None for v in values.values()) else Limits(**values)


def _epoch(value) -> float | None:
    value = utc(value)
    return None if value is None else value.timestamp()


class Authenticator:
    """Turns an ``Authorization`` header into a ``Principal`` and checks model and route grants."""

    def __init__(self, config: AccessConfig, store: AccessStore, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock
        self._require = config.require_keys
        self._master = hash_key(config.master_key.get_secret_value()) if config.master_key else None
        self._state = _State()

    def cache_overrides(self) -> list[dict]:
        """Every key's and team's parsed ``metadata.cache`` (the gateway installs its cache step when one appears)."""
        s = self._state
        found = [t.cache for t in s.teams.values() if t.cache]
        return found + [layer for e in s.by_id.values() if e.cache for layer in e.cache]

    @property
    def key_count(self) -> int:
        """Live keys held in memory."""
        return len(self._state.by_id)

    def authenticate(self, authorization: str | None) -> Principal:
        """The caller behind an ``Authorization: Bearer <key>`` header; raises ``AuthenticationFailed``."""
        if not authorization:
            if self._require:
                raise AuthenticationFailed("missing API key: send the header 'Authorization: Bearer <key>'")
            return Principal()
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationFailed("malformed Authorization header: expected 'Bearer <key>'")
        digest = hashlib.sha256(token.encode()).hexdigest()
        if digest == self._master:
            return Principal(key_id=MASTER_KEY_ID, key_name=MASTER_KEY_ID)
        state = self._state
        entry = state.by_hash.get(digest)
        if entry is None:
            if not self._require and not is_virtual_key(token):
                return Principal()  # a placeholder such as "EMPTY" that SDKs insist on sending
            shown = key_prefix(token) + "..." if is_virtual_key(token) else "(not an sk-il- key)"
            name = state.revoked.get(digest)
            if name is not None:
                raise AuthenticationFailed(f"API key {name!r} ({shown}) has been revoked", code="revoked_api_key")
            raise AuthenticationFailed(f"invalid API key {shown}")
        if entry.expires_at is not None and self._clock() >= entry.expires_at:
            if entry.rotated_out:
                raise AuthenticationFailed(f"this secret of API key {entry.key_name!r} was rotated; use the new one")
            raise AuthenticationFailed(f"API key {entry.key_name!r} has expired", code="expired_api_key")
        return Principal(
            key_id=entry.key_id,
            team_id=entry.team_id,
            key_name=entry.key_name,
            allowed_models=entry.allowed_models,
            key_limits=entry.key_limits,
            team_limits=entry.team_limits,
            cache=entry.cache,
        )

    def authorize(self, principal: Principal, model: str, route: str) -> None:
        """Raise ``PermissionDenied`` (403, naming the model or route) unless the caller may do this."""
        allowed = principal.allowed_models
        if allowed is not None and model not in allowed:
            raise PermissionDenied(f"key {principal.key_name!r} may not use model {model!r}", param="model")
        if principal.key_id is not None:
            entry = self._state.by_id.get(principal.key_id)
            if entry is not None and entry.allowed_routes is not None and route not in entry.allowed_routes:
                raise PermissionDenied(
                    f"key {principal.key_name!r} may not use the {route} route", code="route_not_allowed"
                )

    async def apply(self, change: Change | None) -> None:
        """``ConfigBus`` handler: reload the keys and teams a change names (``None``: everything)."""
        if change is None:
            teams, keys = await asyncio.to_thread(self._store.load_access)
            self._state = self._build(_State(), teams, keys, ())
        elif change.kind in ("key", "team"):
            ids = list(change.ids)
            key_ids, team_ids = (ids, None) if change.kind == "key" else (None, ids)
            teams, keys = await asyncio.to_thread(self._store.load_access, key_ids, team_ids)
            gone = set(team_ids or ()) - {t.id for t in teams}
            self._state = self._build(self._copy(), teams, keys, gone)
        elif change.kind == "all":
            await self.apply(None)

    def _copy(self) -> _State:
        s = self._state
        return _State(dict(s.by_hash), dict(s.by_id), dict(s.hashes_of), dict(s.revoked), dict(s.teams))

    def _build(self, state: _State, teams: Iterable[Team], keys: Iterable[ApiKey], gone: set[str]) -> _State:
        for team_id in gone:
            state.teams.pop(team_id, None)
        for t in teams:
            state.teams[t.id] = _TeamEntry(
                _frozen(t.allowed_models), _frozen(t.allowed_routes), _limits(t), _cache_overrides(t.meta)
            )
        for key in keys:
            for digest in state.hashes_of.pop(key.id, ()):
                state.by_hash.pop(digest, None)
            state.by_id.pop(key.id, None)
            if key.revoked_at is not None:
                state.revoked[key.key_hash] = key.name
                continue
            team = state.teams.get(key.team_id) if key.team_id else None
            entry = KeyEntry(
                key_id=key.id,
                key_name=key.name,
                team_id=key.team_id,
                allowed_models=_meet(_frozen(key.allowed_models), team.models if team else None),
                allowed_routes=_meet(_frozen(key.allowed_routes), team.routes if team else None),
                key_limits=_limits(key),
                team_limits=team.limits if team else None,
                expires_at=_epoch(key.expires_at),
                cache=_cache_layers(_cache_overrides(key.meta), team.cache if team else None),
            )
            state.by_id[key.id] = state.by_hash[key.key_hash] = entry
            hashes: tuple[str, ...] = (key.key_hash,)
            grace = _epoch(key.previous_valid_until)
            if key.previous_key_hash and grace is not None:
                until = grace if entry.expires_at is None else min(grace, entry.expires_at)
                state.by_hash[key.previous_key_hash] = replace(entry, expires_at=until, rotated_out=True)
                hashes += (key.previous_key_hash,)
            state.hashes_of[key.id] = hashes
        return state
