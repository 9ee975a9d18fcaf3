"""``AccessStore``: teams, virtual keys and model overrides in the database.

Every change runs in one transaction that first bumps the ``config_version`` row (which also orders
concurrent changes: PostgreSQL's row lock, SQLite's write lock), then, once committed, is handed to
``on_change`` (the ``ConfigBus``) so every replica reloads what changed. Database calls run in a
worker thread: the event loop serving model traffic never waits on SQL.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlmodel import Session, col, select

from gateway.access import _key_ops, _model_ops, _seed, _team_ops
from gateway.access.bus import Change, ChangeKind, read_version
from gateway.access.catalog import effective_models
from gateway.access.config import AccessConfig
from gateway.access.models import ApiKey, ConfigVersion, ModelOverride, Team, utcnow
from gateway.access.schemas import (
    KeyInfo,
    KeyPatch,
    KeySpec,
    KeyWithSecret,
    ModelInfo,
    TeamInfo,
    TeamPatch,
    TeamSpec,
)
from gateway.config import ModelConfig
from gateway.errors import InvalidRequest

T = TypeVar("T")


class _NoChange(Exception):
    """Raised inside a write to roll it back (and its version bump) when nothing changed."""


class AccessStore:
    """CRUD over teams, keys and model overrides. Raises ``gateway.errors`` classes naming the field."""

    def __init__(self, engine: sa.Engine, yaml_models: Sequence[ModelConfig] = ()) -> None:
        self.engine = engine
        self.yaml_models = list(yaml_models)
        #: Called after each committed change; the runtime points it at ``ConfigBus.publish``.
        self.on_change: Callable[[Change], Awaitable[None]] | None = None

    # -- teams ---------------------------------------------------------------------------------
    async def create_team(self, spec: TeamSpec) -> TeamInfo:
        def op(s: Session) -> tuple[TeamInfo, str]:
            team = _team_ops.create_team(s, self.yaml_models, _key_ops.new_id("team"), spec)
            return _team_ops.team_info(team), team.id

        return await self._write("team", op)

    async def update_team(self, ref: str, patch: TeamPatch) -> TeamInfo:
        def op(s: Session) -> tuple[TeamInfo, str]:
            team = _team_ops.update_team(s, self.yaml_models, ref, patch)
            return _team_ops.team_info(team), team.id

        return await self._write("team", op)

    async def delete_team(self, ref: str) -> TeamInfo:
        def op(s: Session) -> tuple[TeamInfo, str]:
            info = _team_ops.team_info(_team_ops.resolve_team(s, ref))
            _team_ops.delete_team(s, ref)
            return info, info.id

        return await self._write("team", op)

    async def get_team(self, ref: str) -> TeamInfo:
        return await self._read(lambda s: _team_ops.team_info(_team_ops.resolve_team(s, ref)))

    async def list_teams(self) -> list[TeamInfo]:
        return await self._read(
            lambda s: [_team_ops.team_info(t) for t in s.exec(select(Team).order_by(Team.name)).all()]
        )

    # -- keys ----------------------------------------------------------------------------------
    async def create_key(self, spec: KeySpec) -> KeyWithSecret:
        """Create a key; the result carries the full key, which is not stored and never shown again."""

        def op(s: Session) -> tuple[KeyWithSecret, str]:
            key, secret = _key_ops.create_key(s, self.yaml_models, spec)
            return _key_ops.with_secret(s, key, secret), key.id  # type: ignore[arg-type]

        return await self._write("key", op)

    async def update_key(self, ref: str, patch: KeyPatch) -> KeyInfo:
        def op(s: Session) -> tuple[KeyInfo, str]:
            key = _key_ops.update_key(s, self.yaml_models, ref, patch)
            return _key_ops.key_info(s, key), key.id

        return await self._write("key", op)

    async def rotate_key(self, ref: str, grace_seconds: int = 0) -> KeyWithSecret:
        """New secret for a key (same id, grants and limits); the old secret works ``grace_seconds`` more."""

        def op(s: Session) -> tuple[KeyWithSecret, str]:
            key, secret = _key_ops.rotate_key(s, ref, grace_seconds)
            return _key_ops.with_secret(s, key, secret), key.id

        return await self._write("key", op)

    async def revoke_key(self, ref: str) -> KeyInfo:
        def op(s: Session) -> tuple[KeyInfo, str]:
            key = _key_ops.revoke_key(s, ref)
            return _key_ops.key_info(s, key), key.id

        return await self._write("key", op)

    async def get_key(self, ref: str) -> KeyInfo:
        """A key by id, by the name of a live key, or by its visible prefix."""
        return await self._read(lambda s: _key_ops.key_info(s, _key_ops.resolve_key(s, ref)))

    async def list_keys(self, team: str | None = None, include_revoked: bool = False) -> list[KeyInfo]:
        def op(s: Session) -> list[KeyInfo]:
            query = select(ApiKey).order_by(ApiKey.name, ApiKey.created_at)
            if team is not None:
                query = query.where(ApiKey.team_id == _team_ops.resolve_team(s, team).id)
            if not include_revoked:
                query = query.where(col(ApiKey.revoked_at).is_(None))
            return [_key_ops.key_info(s, k) for k in s.exec(query).all()]

        return await self._read(op)

    # -- models --------------------------------------------------------------------------------
    async def list_models(self) -> list[ModelInfo]:
        return await self._read(lambda s: _model_ops.list_models(s, self.yaml_models))

    async def get_model(self, name: str) -> ModelInfo:
        return await self._read(lambda s: _model_ops.get_model(s, self.yaml_models, name))

    async def set_model(self, name: str, config: ModelConfig) -> ModelInfo:
        """Add a model, or replace one (a YAML model included), from the next request on."""
        return await self._write("model", lambda s: (_model_ops.set_model(s, self.yaml_models, name, config), name))

    async def delete_model(self, name: str) -> None:
        await self._write("model", lambda s: (_model_ops.delete_model(s, self.yaml_models, name), name))

    # -- seed and loaders (used by the runtime and the authenticator) ----------------------------
    async def seed(self, access: AccessConfig) -> None:
        """Create the settings file's teams and keys that the database lacks (see ``access.config``)."""

        def op(s: Session) -> tuple[None, str]:
            if not _seed.seed(s, self.yaml_models, access):
                raise _NoChange
            return None, "*"

        with contextlib.suppress(_NoChange):
            await self._write("all", op)

    def read_version(self) -> int:
        return read_version(self.engine)

    def load_access(
        self, key_ids: Sequence[str] | None = None, team_ids: Sequence[str] | None = None
    ) -> tuple[list[Team], list[ApiKey]]:
        """Key and team rows (detached) for the authenticator. ``None`` for both: everything.

        With ids: those keys, the keys of those teams, and the teams of all of them.
        """
        with Session(self.engine, expire_on_commit=False) as s:
            if key_ids is None and team_ids is None:
                return list(s.exec(select(Team)).all()), list(s.exec(select(ApiKey)).all())
            keys: dict[str, ApiKey] = {}
            if key_ids:
                keys.update((k.id, k) for k in s.exec(select(ApiKey).where(col(ApiKey.id).in_(key_ids))).all())
            if team_ids:
                found = s.exec(select(ApiKey).where(col(ApiKey.team_id).in_(team_ids))).all()
                keys.update((k.id, k) for k in found)
            wanted = set(team_ids or ()) | {k.team_id for k in keys.values() if k.team_id}
            teams = list(s.exec(select(Team).where(col(Team.id).in_(wanted))).all()) if wanted else []
            return teams, list(keys.values())

    def load_models(self, errors: dict[str, str] | None = None) -> list[ModelConfig]:
        """The effective model list: YAML models overlaid by the stored overrides.

        Stored overrides that do not validate are left out; ``errors`` receives ``{name: problem}``.
        """
        with Session(self.engine) as s:
            rows = [(r.name, r.config, r.deleted) for r in s.exec(select(ModelOverride)).all()]
        return effective_models(self.yaml_models, rows, errors)[0]

    # -- plumbing ------------------------------------------------------------------------------
    async def _read(self, op: Callable[[Session], T]) -> T:
        def run() -> T:
            with Session(self.engine) as s:
                return op(s)

        return await asyncio.to_thread(run)

    async def _write(self, kind: ChangeKind, op: Callable[[Session], tuple[T, Any]]) -> T:
        def run() -> tuple[T, Change]:
            with Session(self.engine) as s, s.begin():
                version = _bump(s)  # first: takes the write lock before anything is read
                try:
                    result, ident = op(s)
                except sa.exc.IntegrityError as exc:
                    # A concurrent writer on a database without the version row lock won the race.
                    raise InvalidRequest(f"conflicting change: {exc.orig}", code="conflict", status=409) from exc
            return result, Change(version=version, kind=kind, ids=(str(ident),))

        result, change = await asyncio.to_thread(run)
        if self.on_change is not None:
            await self.on_change(change)
        return result


def _bump(s: Session) -> int:
    now = utcnow()
    updated = s.exec(
        sa.update(ConfigVersion).where(ConfigVersion.id == 1).values(version=ConfigVersion.version + 1, updated_at=now)
    )
    if updated.rowcount == 0:  # a schema made without the migration has no row yet
        s.add(ConfigVersion(id=1, version=1, updated_at=now))
        s.flush()
        return 1
    return s.exec(select(ConfigVersion.version).where(ConfigVersion.id == 1)).one()
