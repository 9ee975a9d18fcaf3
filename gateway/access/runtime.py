"""``AccessRuntime``: one replica's access control, built in the gateway's lifespan and passed down.

It owns the store (database), the in-memory authenticator, the effective model list and the bus
that keeps all three in step across replicas. The gateway uses ``authenticator`` on every request,
registers ``on_models_changed`` to swap its model table, and mounts the admin app over it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

import sqlalchemy as sa

from gateway.access.admin_auth import AdminTokens
from gateway.access.authenticator import Authenticator
from gateway.access.bus import Change, ConfigBus
from gateway.access.config import AccessConfig
from gateway.access.store import AccessStore
from gateway.config import ModelConfig

ModelsCallback = Callable[[list[ModelConfig]], Awaitable[None]]

log = logging.getLogger(__name__)


class AccessRuntime:
    def __init__(
        self,
        config: AccessConfig,
        engine: sa.Engine,
        yaml_models: Sequence[ModelConfig] = (),
        *,
        redis_url: str | None = None,
    ) -> None:
        self.config = config
        self.store = AccessStore(engine, yaml_models)
        self.authenticator = Authenticator(config, self.store)
        self.admin_tokens = AdminTokens(config)
        self.bus = ConfigBus(engine, redis_url, poll_interval=config.poll_interval, channel=config.bus_channel)
        self.store.on_change = self.bus.publish
        self.bus.subscribe(self.authenticator.apply)
        self.bus.subscribe(self._apply_models)
        self._models: list[ModelConfig] = list(yaml_models)
        self._callbacks: list[ModelsCallback] = []
        #: Stored model overrides left out because they do not validate: ``{name: problem}``.
        self.model_errors: dict[str, str] = {}

    @property
    def models(self) -> list[ModelConfig]:
        """The effective models now: YAML overlaid by admin overrides. Build the first model table from this."""
        return self._models

    def on_models_changed(self, callback: ModelsCallback) -> None:
        """Call ``callback(models)`` with the new effective list whenever it changes on any replica.

        The callback should build new objects and assign them, so requests in flight keep the old ones.
        """
        self._callbacks.append(callback)

    async def start(self) -> None:
        """Load keys, teams and models, follow changes, then create the settings file's seed if missing."""
        await self.bus.start()
        await self.store.seed(self.config)

    async def aclose(self) -> None:
        await self.bus.aclose()

    async def _apply_models(self, change: Change | None) -> None:
        if change is not None and change.kind not in ("model", "all"):
            return
        errors: dict[str, str] = {}
        models = await asyncio.to_thread(self.store.load_models, errors)
        if errors != self.model_errors:
            for name, problem in errors.items():
                log.error("model %r: stored configuration is invalid and is not served: %s", name, problem)
            self.model_errors = errors
        if models == self._models:
            return
        for callback in self._callbacks:
            await callback(models)
        self._models = models
