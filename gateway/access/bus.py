"""``ConfigBus``: admin changes reach every replica within a second, without a restart.

    admin change ──► DB transaction (data + config_version += 1) ──► publish on ``interlock:config``
                                                                         │
    every replica: subscriber ◄──────────────────────────────────────────┘
                   └─► handlers(change) reload only what changed, then swap new dicts in

The version row is the source of truth; pub/sub only makes it fast. A replica applies a message
whose version is the next one it expects; a gap (a lost message, a replica that was away) or a poll
that finds a newer version triggers a full reload instead. Without Redis, or while the subscription
is down, the version row is polled every ``poll_interval`` seconds; with Redis, every few seconds
as a safety net. Handlers build new objects and assign them, so requests in flight keep the old ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import orjson
import sqlalchemy as sa

log = logging.getLogger(__name__)

CHANNEL = "interlock:config"
ChangeKind = Literal["key", "team", "model", "all"]


@dataclass(frozen=True, slots=True)
class Change:
    """What one committed admin change touched. ``kind="all"`` means reload everything."""

    version: int
    kind: ChangeKind
    ids: tuple[str, ...] = ()

    def encode(self) -> bytes:
        return orjson.dumps({"version": self.version, "kind": self.kind, "ids": list(self.ids)})

    @classmethod
    def decode(cls, data: bytes | str) -> Change:
        raw = orjson.loads(data)
        return cls(version=int(raw["version"]), kind=raw["kind"], ids=tuple(raw.get("ids", ())))


#: A handler reloads what ``change`` names; ``None`` asks it to reload everything.
Handler = Callable[[Change | None], Awaitable[None]]


def read_version(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        version = conn.execute(sa.text("SELECT version FROM config_version WHERE id = 1")).scalar()
    return int(version or 0)


class ConfigBus:
    """Delivers committed changes to this replica's handlers, in version order."""

    def __init__(
        self,
        engine: sa.Engine,
        redis_url: str | None = None,
        *,
        poll_interval: float = 0.5,
        safety_interval: float = 5.0,
        channel: str = CHANNEL,
    ) -> None:
        self._engine = engine
        self._redis_url = redis_url
        self._poll_interval = poll_interval
        self._safety_interval = safety_interval
        self._channel = channel
        self._handlers: list[Handler] = []
        self._lock = asyncio.Lock()
        self._applied = -1
        self._last_sync = 0.0
        self._subscribed = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._redis = None

    @property
    def version(self) -> int:
        """The configuration version this replica has applied."""
        return self._applied

    def subscribe(self, handler: Handler) -> None:
        self._handlers.append(handler)

    async def start(self) -> None:
        """Load everything once, then follow changes (Redis subscription and/or version polling)."""
        await self.sync()
        if self._redis_url:
            import redis.asyncio as aioredis

            self._redis = aioredis.Redis.from_url(self._redis_url)
            self._tasks.append(asyncio.create_task(self._listen(), name="config-bus-listen"))
            # Return once listening, so a change made right after start is heard (polling covers a slow Redis).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._subscribed.wait(), timeout=2.0)
        self._tasks.append(asyncio.create_task(self._poll(), name="config-bus-poll"))

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    async def publish(self, change: Change) -> None:
        """Apply a change here at once (the admin caller sees it applied), then tell the other replicas."""
        try:
            await self._deliver(change)
        except Exception as exc:  # committed all the same; the next version check reloads
            log.warning("config bus: applying version %s here failed: %s", change.version, exc)
        if self._redis is not None:
            try:
                await self._redis.publish(self._channel, change.encode())
            except Exception as exc:  # the others still find it by polling the version row
                log.warning("config bus: publish failed (%s); replicas will pick the change up by polling", exc)

    async def sync(self) -> None:
        """Reload everything if the database holds a newer version than the one applied."""
        async with self._lock:
            version = await asyncio.to_thread(read_version, self._engine)
            self._last_sync = time.monotonic()
            if version != self._applied:
                await self._reload_all(version)

    async def _deliver(self, change: Change) -> None:
        async with self._lock:
            if change.version <= self._applied:
                return  # already applied (our own message coming back, or a full reload got it)
            version = await asyncio.to_thread(read_version, self._engine)
            if version < change.version:
                return  # not confirmed by our database: another deployment's message on a shared channel
            if change.version == self._applied + 1 and change.kind != "all":
                await self._run_handlers(change)
                self._applied = change.version
            else:  # a gap: some change was missed
                await self._reload_all(version)

    async def _reload_all(self, version: int) -> None:
        # Read the version before the data: data newer than the version is harmless (it is reloaded
        # again at the next bump), data older than it would be a missed change.
        await self._run_handlers(None)
        self._applied = version

    async def _run_handlers(self, change: Change | None) -> None:
        """Every handler runs even when one fails (keys must not wait on a model problem); the first error is
        raised afterwards so the version is not marked applied and the next check reloads everything."""
        first: Exception | None = None
        for handler in self._handlers:
            try:
                await handler(change)
            except Exception as exc:
                first = first or exc
        if first is not None:
            raise first

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval)
            if self._subscribed.is_set() and time.monotonic() - self._last_sync < self._safety_interval:
                continue  # pub/sub is up: the version row is only a safety net
            try:
                await self.sync()
            except Exception as exc:
                log.warning("config bus: version check failed: %s", exc)

    async def _listen(self) -> None:
        backoff = 0.1
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)  # type: ignore[union-attr]
            try:
                await pubsub.subscribe(self._channel)
                self._subscribed.set()
                backoff = 0.1
                await self.sync()  # anything published while we were not listening
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        await self._on_message(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("config bus: subscription lost (%s); polling until it is back", exc)
            finally:
                self._subscribed.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def _on_message(self, data: bytes) -> None:
        try:
            change = Change.decode(data)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("config bus: ignoring malformed message %r", data[:200])
            return
        try:
            await self._deliver(change)
        except Exception as exc:  # a failed reload must not end the subscription; polling retries
            log.warning("config bus: applying version %s failed: %s", change.version, exc)
