"""``RouterRuntime``: one replica's intent routers, kept in step with the database through the config bus.

    PUT /admin/routers/x ─► parse (400 naming the field) ─► train in a thread ─► store (version + 1, weights)
                         ─► bus.publish: applied here before the answer, then every other replica loads the
                            stored weights (no retraining) and swaps its routers dict in one assignment

In service mode the gateway keeps only the names and definitions (to resolve ``model`` and render targets);
the router service (``services/router``) holds the weights and decides.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from gateway.access.bus import Change, ConfigBus
from gateway.intent.config import IntentRouterConfig
from gateway.intent.models import IntentRouterRow
from gateway.intent.store import RouterStore
from router.intent import (
    DefinitionError,
    Head,
    HTTPRouting,
    IntentRouter,
    IntentRouting,
    LocalRouting,
    RouterDefinition,
    parse_definition,
    train,
)

log = logging.getLogger("interlock.router")


class RouterRuntime:
    def __init__(
        self,
        config: IntentRouterConfig,
        engine: sa.Engine,
        bus: ConfigBus,
        *,
        embeddings: Callable[[], Any],
        known_models: Callable[[], set[str]],
        hold_weights: bool | None = None,
    ) -> None:
        self.config = config
        self.store = RouterStore(engine)
        self.bus = bus
        self._provider = embeddings  # returns the process's EmbeddingService (loads the model on first call)
        self._provider_lock = threading.Lock()  # training and loading ask from worker threads
        self._known_models = known_models
        #: Embedded mode (and the router service) hold trained routers; a gateway in service mode does not.
        self.hold_weights = config.mode == "embedded" if hold_weights is None else hold_weights
        self.local = LocalRouting(self._embed_one) if self.hold_weights else None
        self.routing: IntentRouting = self.local or HTTPRouting(
            config.service_url or "http://127.0.0.1:8300", timeout=config.service_timeout
        )
        #: Router names and definitions served now; replaced whole on every change.
        self.definitions: dict[str, RouterDefinition] = {}
        self.versions: dict[str, int] = {}
        self.names: frozenset[str] = frozenset()
        self._lock = asyncio.Lock()
        bus.subscribe(self.apply)

    def _embeddings(self):
        with self._provider_lock:
            return self._provider()

    async def _embed_one(self, text: str):
        return await self._embeddings().embed_one(text)

    async def start(self) -> None:
        """Load what the database holds (the bus has started), then train YAML routers that changed."""
        await self.apply(None)
        for name, definition in self.config.routers.items():
            stored = self.definitions.get(name)
            if stored is None or stored.model_dump(mode="json") != definition.model_dump(mode="json"):
                await self.put(name, definition.model_dump(mode="json"), source="yaml")

    async def aclose(self) -> None:
        await self.routing.aclose()

    # -- following the database -----------------------------------------------------------------------------

    async def apply(self, change: Change | None) -> None:
        """Config bus handler: reload the routers a change names (``None``: compare every version)."""
        if change is not None and change.kind not in ("router", "all"):
            return
        async with self._lock:
            current = await asyncio.to_thread(self._stored_versions)
            names = None if change is None or change.kind == "all" else list(change.ids)
            wanted = [n for n, v in current.items() if self.versions.get(n) != v and (names is None or n in names)]
            rows = await asyncio.to_thread(self.store.load, wanted) if wanted else []
            loaded = await asyncio.to_thread(self._build, rows)
            definitions = {n: d for n, d in self.definitions.items() if n in current}
            versions = {n: v for n, v in self.versions.items() if n in current}
            routers = dict(self.local.routers) if self.local else {}
            routers = {n: r for n, r in routers.items() if n in current}
            for name, version, definition, router in loaded:
                definitions[name], versions[name] = definition, version
                if router is not None:
                    routers[name] = router
            if self.local is not None:
                self.local.routers = routers
            self.definitions, self.versions, self.names = definitions, versions, frozenset(definitions)

    def _stored_versions(self) -> dict[str, int]:
        with Session(self.store.engine) as s:
            return {n: v for n, v in s.exec(select(IntentRouterRow.name, IntentRouterRow.version)).all()}

    def _build(self, rows: list[IntentRouterRow]) -> list[tuple[str, int, RouterDefinition, IntentRouter | None]]:
        out = []
        for row in rows:
            definition = RouterDefinition.model_validate(row.definition)
            router = None
            if self.hold_weights:
                self._embeddings()  # the model loads here (start or an admin change), never on a request
                router = IntentRouter(row.name, row.version, definition, Head.from_bytes(row.weights))
            out.append((row.name, row.version, definition, router))
        return out

    # -- admin changes --------------------------------------------------------------------------------------

    async def put(self, name: str, data: Any, *, source: str = "api") -> dict[str, Any]:
        """Validate, train, store and apply here; the old version serves until then (and on any error)."""
        if not isinstance(name, str) or not 0 < len(name) <= 128 or name != name.strip():
            raise DefinitionError("name: 1 to 128 characters without surrounding spaces", param="name")
        if name in self._known_models():
            raise DefinitionError(f"name: {name!r} is already a model name", param="name")
        definition = parse_definition(data)
        definition.check_models(self._known_models())
        service = await asyncio.to_thread(self._embeddings)
        embedding: dict[str, Any] = {}  # tokens, padding and threads of the bulk embedding, for the figures
        router = await asyncio.to_thread(
            train, name, 0, definition, functools.partial(service.embed_sync, stats=embedding), service.name
        )
        router.figures.update(embedding)
        stored = definition.model_dump(mode="json")
        version, change = await asyncio.to_thread(
            self.store.save, name, stored, router.head.to_bytes(), router.figures, service.name, source
        )
        await self.bus.publish(change)
        if self.versions.get(name) != version:  # the bus saw a gap and reloaded all: that includes ours
            await self.apply(Change(version=change.version, kind="router", ids=(name,)))  # type: ignore[arg-type]
        return self.info(name, figures=router.figures)

    async def delete(self, name: str) -> bool:
        change = await asyncio.to_thread(self.store.delete, name)
        if change is None:
            return False
        await self.bus.publish(change)
        if name in self.names:
            await self.apply(change)
        return True

    def info(self, name: str, *, figures: dict | None = None) -> dict[str, Any]:
        definition = self.definitions[name]
        out: dict[str, Any] = {
            "name": name,
            "version": self.versions.get(name),
            "intents": len(definition.intents),
            "examples": sum(len(i.examples) for i in definition.intents),
            "definition": definition.model_dump(mode="json", exclude_defaults=False),
        }
        if figures is not None:
            out["training"] = figures
        return out

    async def describe(self, name: str | None = None) -> list[dict[str, Any]]:
        """What ``GET /admin/routers`` shows: version, size and training figures (from the database)."""
        rows = await asyncio.to_thread(self.store.load, None if name is None else [name])
        out = []
        for row in sorted(rows, key=lambda r: r.name):
            definition = row.definition
            out.append(
                {
                    "name": row.name,
                    "version": row.version,
                    "source": row.source,
                    "embedder": row.embedder,
                    "updated_at": row.updated_at.isoformat(),
                    "intents": [i["name"] for i in definition.get("intents", [])],
                    "examples": sum(len(i.get("examples", [])) for i in definition.get("intents", [])),
                    "weights_bytes": len(row.weights),
                    "serving_version": self.versions.get(row.name),
                    "training": row.figures,
                    "definition": definition if name is not None else None,
                }
            )
        return out
