"""The caches follow admin changes on every replica, without a restart.

``follow_caches``: the gateway gets its cache step when the first model, key or team gets a ``cache`` section
(and its semantic index when the first semantic cache is enabled), on whichever replica the change was made.
Until then nothing of the cache is on the request path.

``CacheClears``: invalidations on every replica. The shared backends (Redis, pgvector, the cache service) are
cleared once, the in-process ones (the embedded LRU and numpy index) on every replica, through the config bus.

    DELETE /admin/cache ─► this replica: its in-process backends ─► DB: config_version + 1 and a row in
                           ``interlock_cache_clears`` ─► bus.publish (kind ``cache``) ─► the shared backends
    every other replica: bus handler ─► the rows it has not applied yet ─► its in-process backends

The row, not the message, is what a replica applies: a lost message, or a replica polling the version row
without Redis, gets ``change=None`` and still finds every invalidation it has not applied. ``older_than`` is
kept as a cutoff time, so a replica applying it a second later drops the same entries. Rows older than a day
are pruned: a replica cut off from the database for longer than that misses them (a restart empties its
in-process caches).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import Any

import orjson
import sqlalchemy as sa
from sqlmodel import Session

from cache import Invalidation, ResponseCache, build_cache
from cache.engine import build_semantic_index
from gateway.access.bus import Change, ConfigBus
from gateway.access.store import _bump as bump_config_version
from gateway.cache_models import CacheClearRow

log = logging.getLogger("interlock.cache")

TABLE = CacheClearRow.__table__
KEEP_SECONDS = 86_400


class CacheClears:
    def __init__(self, engine: sa.Engine, bus: ConfigBus, cache: ResponseCache) -> None:
        self.engine = engine
        self.bus = bus
        self.cache = cache
        self._seen = 0
        self._own: set[int] = set()
        """Versions this replica published: already applied here, with counts for the admin's answer."""

    async def start(self) -> None:
        """Skip what was cleared before this process existed (its caches are new), then follow the bus."""
        self._seen = await asyncio.to_thread(self._start)
        self.bus.subscribe(self.apply)

    def _start(self) -> int:
        # The table comes from migration 0010, run by every worker at startup.
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.max(TABLE.c.version))).scalar() or 0)

    async def clear(self, what: Invalidation) -> dict[str, int]:
        """Clear here, tell the other replicas, then clear the shared backends (``CacheUnavailable`` when one is
        down: the in-process caches are cleared everywhere all the same). Returns counts by kind."""
        counts = await self.cache.clear(what, shared=False)
        version = await asyncio.to_thread(self._record, what)
        self._own.add(version)
        await self.bus.publish(Change(version=version, kind="cache"))  # type: ignore[arg-type]
        for kind, n in (await self.cache.clear(what, local=False)).items():
            counts[kind] = counts.get(kind, 0) + n
        return counts

    def _record(self, what: Invalidation) -> int:
        now = time.time()
        fields = dataclasses.asdict(what)
        older = fields.pop("older_than")
        fields["cutoff"] = None if older is None else now - older
        with Session(self.engine) as s, s.begin():
            version = bump_config_version(s)  # first: the version row orders this among all admin changes
            s.execute(TABLE.insert().values(version=version, what=orjson.dumps(fields).decode(), at=now))
            s.execute(TABLE.delete().where(TABLE.c.at < now - KEEP_SECONDS))
        return version

    async def apply(self, change: Change | None) -> None:
        """Config bus handler: replay the invalidations of other replicas on this one's in-process backends."""
        if change is not None and change.kind not in ("cache", "all"):
            return
        rows = await asyncio.to_thread(self._since, self._seen)
        for version, raw in rows:
            if version not in self._own:
                fields = orjson.loads(raw)
                cutoff = fields.pop("cutoff")
                what = Invalidation(**fields, older_than=None if cutoff is None else max(0.0, time.time() - cutoff))
                dropped = await self.cache.clear(what, shared=False)
                log.info("cache invalidation %s from another replica dropped %s here", version, dropped)
            self._own.discard(version)
            self._seen = max(self._seen, version)

    def _since(self, version: int) -> list[tuple[int, str]]:
        with self.engine.connect() as conn:
            query = sa.select(TABLE.c.version, TABLE.c.what).where(TABLE.c.version > version).order_by(TABLE.c.version)
            return [(int(v), w) for v, w in conn.execute(query)]


async def follow_caches(gateway: Any) -> None:
    """Called from ``Gateway.start``: the cache step now if any cache section exists, then on every config change
    that brings the first one (after the access handlers, so ``gateway.access`` is already up to date)."""
    await _install(gateway, None, initial=True)

    async def on_change(change: Change | None) -> None:
        if change is None or change.kind in ("model", "key", "team", "all"):
            await _install(gateway, change, initial=False)

    gateway.access.bus.subscribe(on_change)


def _sections(gateway: Any) -> list:
    """Every cache section in force: the models', then the keys' and teams' overrides (``None``: no cache)."""
    sections = [m.cache for m in gateway.access.models if m.cache is not None]
    for overrides in gateway.access.authenticator.cache_overrides():
        sections.extend(c for c in overrides.values() if c is not None)
    return sections


async def _install(gateway: Any, change: Change | None, *, initial: bool) -> None:
    from gateway.cache_step import CacheStep

    sections = _sections(gateway)
    if not sections:  # a step once installed stays: it costs a dictionary lookup for a model without a section
        return
    semantic = any(c.semantic.enabled for c in sections)
    s = gateway.settings
    step = gateway.cache
    if step is None:
        # The embedder loads in a thread: on a live change the event loop keeps serving meanwhile.
        dim = (await asyncio.to_thread(gateway.require_embeddings)).dim if semantic else None
        cache = build_cache(s.cache, redis_url=s.redis.url, dim=dim, semantic=semantic)
        step = CacheStep(gateway, cache, s.cache)
        step.clears = CacheClears(gateway.engine, gateway.access.bus, cache)
        await step.clears.start()
        gateway.cache = step
        if not initial:
            gateway.fold_steps()
            log.info("cache step installed after a configuration change (version %s)", change and change.version)
    elif semantic and step.cache.semantic_index is None:
        dim = (await asyncio.to_thread(gateway.require_embeddings)).dim
        step.cache.semantic_index = build_semantic_index(s.cache, dim)
        log.info("semantic cache index built after a configuration change")
