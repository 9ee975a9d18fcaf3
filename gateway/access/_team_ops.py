"""Team operations, each run inside the store's transaction (see ``AccessStore``)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, func, select

from gateway.access._common import check_models, conflict, limits_of, set_limits
from gateway.access.models import ApiKey, Team, utc, utcnow
from gateway.access.schemas import TeamInfo, TeamPatch, TeamSpec
from gateway.config import ModelConfig
from gateway.errors import InvalidRequest, NotFound


def team_info(team: Team) -> TeamInfo:
    return TeamInfo(
        id=team.id,
        name=team.name,
        allowed_models=team.allowed_models,
        allowed_routes=team.allowed_routes,  # type: ignore[arg-type]
        limits=limits_of(team),
        metadata=team.meta,
        created_at=utc(team.created_at),
        updated_at=utc(team.updated_at),
    )


def resolve_team(s: Session, ref: str, param: str = "team") -> Team:
    """A team by id, else by name."""
    team = s.get(Team, ref) or s.exec(select(Team).where(Team.name == ref)).first()
    if team is None:
        raise NotFound(f"team {ref!r} not found", param=param)
    return team


def _name_free(s: Session, name: str) -> None:
    if s.exec(select(Team.id).where(Team.name == name)).first() is not None:
        raise conflict(f"name: a team named {name!r} already exists", "name")


def create_team(
    s: Session, yaml_models: Sequence[ModelConfig], team_id: str, spec: TeamSpec, source: str = "api"
) -> Team:
    _name_free(s, spec.name)
    check_models(s, yaml_models, spec.allowed_models)
    team = Team(
        id=team_id,
        name=spec.name,
        allowed_models=spec.allowed_models,
        allowed_routes=spec.allowed_routes,
        meta=spec.metadata,
        source=source,
    )
    set_limits(team, spec.limits, only_set=False)
    s.add(team)
    s.flush()
    return team


def update_team(s: Session, yaml_models: Sequence[ModelConfig], ref: str, patch: TeamPatch) -> Team:
    team = resolve_team(s, ref)
    fields = patch.model_fields_set
    if "name" in fields and patch.name is None:
        raise InvalidRequest("name: a team must have a name", param="name")
    if patch.name is not None and patch.name != team.name:
        _name_free(s, patch.name)
        team.name = patch.name
    if "allowed_models" in fields:
        check_models(s, yaml_models, patch.allowed_models)
        team.allowed_models = patch.allowed_models
    if "allowed_routes" in fields:
        team.allowed_routes = patch.allowed_routes  # type: ignore[assignment]
    if "limits" in fields and patch.limits is not None:
        set_limits(team, patch.limits, only_set=True)
    if "metadata" in fields:
        team.meta = patch.metadata or {}
    team.updated_at = utcnow()
    s.add(team)
    s.flush()
    return team


def delete_team(s: Session, ref: str) -> Team:
    team = resolve_team(s, ref)
    live = s.exec(
        select(func.count()).select_from(ApiKey).where(ApiKey.team_id == team.id, ApiKey.revoked_at.is_(None))
    ).one()
    if live:
        raise InvalidRequest(
            f"team {team.name!r} still has {live} live key(s): revoke them or move them to another team first",
            param="team",
        )
    # Revoked keys keep their history but no longer point at the team.
    for key in s.exec(select(ApiKey).where(ApiKey.team_id == team.id)).all():
        key.team_id = None
        s.add(key)
    s.flush()
    s.delete(team)
    s.flush()
    return team
