"""Which Redis keys a principal's limits live under.

Every key starts with ``interlock:`` and carries a Redis Cluster hash tag: the team's when the key
belongs to one, else the key's own. So the key level and the team level of one request always share a
slot, and the admit script may touch both in one call on a cluster too.

    interlock:{t.<team>}:                 the team's counters
    interlock:{t.<team>}:k.<key>:         a key of that team
    interlock:{k.<key>}:                  a key without a team
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gateway.types import Limits, Principal

PREFIX = "interlock:"


@dataclass(slots=True, frozen=True)
class Level:
    """One set of limits checked for a request: the key's or its team's."""

    kind: Literal["key", "team"]
    id: str
    #: How messages name it: the key's name (else its id), or the team id.
    label: str
    base: str
    limits: Limits

    @property
    def windowed(self) -> bool:
        return self.limits.rpm is not None or self.limits.tpm is not None

    @property
    def has_slot(self) -> bool:
        return self.limits.max_concurrency is not None

    @property
    def has_budget(self) -> bool:
        return self.limits.budget_daily_usd is not None or self.limits.budget_monthly_usd is not None

    def args(self) -> tuple[str, str, str, str, str]:
        """The five per-level arguments of the admit script ('' = unlimited)."""
        lim = self.limits
        return (
            _arg(lim.rpm),
            _arg(lim.tpm),
            _arg(lim.max_concurrency),
            _arg(lim.budget_daily_usd),
            _arg(lim.budget_monthly_usd),
        )


def _arg(value: float | None) -> str:
    return "" if value is None else repr(value)


def _limited(limits: Limits | None) -> bool:
    return limits is not None and any(
        v is not None
        for v in (
            limits.rpm,
            limits.tpm,
            limits.max_concurrency,
            limits.budget_daily_usd,
            limits.budget_monthly_usd,
        )
    )


def levels_of(principal: Principal) -> tuple[Level, ...]:
    """The levels to check, key first; empty when nothing is limited (Redis is then not asked at all)."""
    levels: list[Level] = []
    key_id, team_id = principal.key_id, principal.team_id
    tag = f"{PREFIX}{{t.{team_id}}}:" if team_id is not None else f"{PREFIX}{{k.{key_id}}}:"
    if key_id is not None and _limited(principal.key_limits):
        base = f"{tag}k.{key_id}:" if team_id is not None else tag
        label = principal.key_name or key_id
        levels.append(Level("key", key_id, label, base, principal.key_limits))  # type: ignore[arg-type]
    if team_id is not None and _limited(principal.team_limits):
        levels.append(Level("team", team_id, team_id, tag, principal.team_limits))  # type: ignore[arg-type]
    return tuple(levels)
