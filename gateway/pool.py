"""Models and their deployments as the request path sees them: a ``ModelTable`` of ``ModelPool``s.

The table is built from configuration at startup and rebuilt when an admin changes models; rebuilding swaps a
dict, so in-flight requests finish on the objects they started with. Deployments whose configuration did not
change are carried over with their health, breaker and in-flight counts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from gateway.config import DeploymentConfig, HealthConfig, ModelConfig, TimeoutConfig
from gateway.health import CircuitBreaker
from gateway.types import Upstream
from gateway.upstreams import HTTPPool, build_upstream
from router import ROUTERS, EndpointInfo, RouteHint, Router

log = logging.getLogger("interlock.pool")


class Deployment:
    """One upstream of one model, with its health state."""

    def __init__(self, model: str, config: DeploymentConfig, upstream: Upstream, health: HealthConfig) -> None:
        assert config.name
        self.model = model
        self.name = config.name
        self.config = config
        self.upstream = upstream
        self.breaker = CircuitBreaker(health.failure_threshold, health.cooldown)
        #: Result of the last active check. Optimistic until the first one: a fresh gateway serves at once.
        self.check_ok = True
        self.info = EndpointInfo(config.name, config.weight, True, 0, config.max_concurrency)

    def refresh(self) -> bool:
        self.info.healthy = self.check_ok and self.breaker.available()
        return self.info.healthy

    async def check(self) -> None:
        ok = await self.upstream.health()
        if ok != self.check_ok:
            log.warning("deployment %s of %s is %s", self.name, self.model, "up" if ok else "DOWN")
        self.check_ok = ok
        stats_of = getattr(self.upstream, "engine_stats", None)
        if ok and stats_of is not None:
            stats = await stats_of()
            if stats is not None:
                self.info.stats = stats


class ModelPool:
    """A public model name, its deployments, and the router that picks among them."""

    def __init__(self, config: ModelConfig, deployments: list[Deployment], router: Router) -> None:
        self.name = config.name
        self.config = config
        self.deployments = deployments
        self.router = router
        self._by_name = {d.name: d for d in deployments}

    async def pick(self, hint: RouteHint, exclude: Iterable[str] = ()) -> Deployment | None:
        infos = []
        for d in self.deployments:
            d.refresh()
            if d.name not in exclude:
                infos.append(d.info)
        info = await self.router.choose(infos, hint)
        return None if info is None else self._by_name[info.name]

    def healthy_count(self) -> int:
        return sum(1 for d in self.deployments if d.refresh())


class ModelTable:
    """Public model name -> pool. Owns the upstreams it builds."""

    def __init__(
        self,
        http: HTTPPool,
        timeouts: TimeoutConfig,
        health: HealthConfig,
        load_factor: float,
    ) -> None:
        self.http = http
        self.timeouts = timeouts
        self.health = health
        self.load_factor = load_factor
        self.pools: dict[str, ModelPool] = {}
        #: Models left out of the last ``apply`` because an upstream could not be built: ``{name: problem}``.
        self.errors: dict[str, str] = {}

    def _router(self, kind: str) -> Router:
        cls = ROUTERS[kind]
        return cls(self.load_factor) if kind == "prefix_affinity" else cls()

    def apply(self, models: list[ModelConfig]) -> None:
        """Build pools for ``models``, keeping deployments (and routers) whose configuration is unchanged.

        A model whose upstream cannot be built (a litellm deployment without litellm installed, say) is left
        out and named in ``errors``: one bad model must not stop the others from being served or updated.
        """
        old = self.pools
        new: dict[str, ModelPool] = {}
        errors: dict[str, str] = {}
        for m in models:
            try:
                new[m.name] = self._pool(m, old.get(m.name))
            except Exception as exc:
                errors[m.name] = f"{type(exc).__name__}: {exc}"
                log.error("model %r is not served: its deployments cannot be built: %s", m.name, errors[m.name])
        self.pools = new  # one assignment: requests already routed keep their pool objects
        self.errors = errors

    def _pool(self, m: ModelConfig, prev: ModelPool | None) -> ModelPool:
        kept = {(d.name, d.config.model_dump_json()): d for d in prev.deployments} if prev else {}
        deployments = []
        for dc in m.deployments:
            d = kept.get((dc.name, dc.model_dump_json()))
            if d is None:
                d = Deployment(m.name, dc, build_upstream(dc, m.name, self.http, self.timeouts), self.health)
            deployments.append(d)
        router = prev.router if prev and prev.config.routing == m.routing else self._router(m.routing)
        return ModelPool(m, deployments, router)

    def get(self, name: str) -> ModelPool | None:
        return self.pools.get(name)

    def all(self) -> list[ModelPool]:
        return list(self.pools.values())
