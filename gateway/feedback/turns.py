"""Implicit-signal state in Redis, shared by every gateway replica: a user's next turn may reach another one.

Each conversation's last turn is one key, ``<prefix>c:<key id>:<hash of the conversation>``, and the key's last
turn by opening (system prompt) another, ``<prefix>o:...``; both hold a ``Turn`` (ids, message digests, a
bigram sketch: never text) and expire after ``window``. Conversations whose last turn went badly are in a sorted
set by time; ``sweep`` claims the old ones with ZREM (one replica reports each abandonment) and reads their turn.
The gateway observes a batch of finished requests per flush interval (one MGET and one pipeline), never on the
request path. Redis failures lose that batch's signals, never a request.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from gateway.feedback.signals import Observation, Signal, SignalDetector, Turn

log = logging.getLogger("interlock.feedback")

PREFIX = "interlock:feedback:"
#: Abandonment candidates claimed per sweep at most.
SWEEP_BATCH = 500


def dump(turn: Turn) -> bytes:
    d = {f: getattr(turn, f) for f in Turn.__slots__}
    d["digests"] = [x.hex() for x in turn.digests]
    d["sketch"] = turn.sketch.hex()
    return orjson.dumps(d)


def load(raw: bytes | None) -> Turn | None:
    if raw is None:
        return None
    try:
        d = orjson.loads(raw)
        d["digests"] = tuple(bytes.fromhex(x) for x in d["digests"])
        d["sketch"] = bytes.fromhex(d["sketch"])
        return Turn(**d)
    except (ValueError, TypeError, KeyError):
        return None  # written by another version: forget it


class RedisTurns:
    def __init__(self, url: str, detector: SignalDetector, *, prefix: str = PREFIX, client: Any = None) -> None:
        import redis.asyncio as aioredis

        self.detector = detector
        self._redis = client or aioredis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._p = prefix
        self._pending = prefix + "pending"

    async def aclose(self) -> None:
        await self._redis.aclose()

    async def observe(self, batch: list[Observation]) -> list[Signal]:
        """Judge a batch of finished requests in order against the shared state, then store their turns."""
        if not batch:
            return []
        p, ttl = self._p, max(1, int(self.detector.window))
        names = list(dict.fromkeys(k for o in batch for k in (p + "c:" + o.turn.conv, p + "o:" + o.opening)))
        state = {n: load(raw) for n, raw in zip(names, await self._redis.mget(names), strict=True)}
        signals: list[Signal] = []
        dirty: dict[str, Turn] = {}
        pending: dict[str, float] = {}
        for o in batch:
            conv, opening = p + "c:" + o.turn.conv, p + "o:" + o.opening
            found, touched = self.detector.judge(o, state.get(conv), state.get(opening))
            signals += found
            if touched is not None and state.get(p + "c:" + touched.conv) in (None, touched):
                dirty[p + "c:" + touched.conv] = touched  # now followed: no abandonment for it
            state[conv] = state[opening] = dirty[conv] = dirty[opening] = o.turn
            if o.turn.negative:
                pending[conv] = o.turn.at
        async with self._redis.pipeline(transaction=False) as pipe:
            for name, turn in dirty.items():
                pipe.set(name, dump(turn), ex=ttl)
            if pending:
                pipe.zadd(self._pending, pending)
            await pipe.execute()
        return signals

    async def sweep(self) -> list[Signal]:
        """Abandonments: conversations whose last turn went badly ``abandon_after`` ago with no next turn."""
        d = self.detector
        now = d.clock()
        r = self._redis
        await r.zremrangebyscore(self._pending, 0, now - d.window)  # their turns have expired
        due = await r.zrangebyscore(self._pending, 0, now - d.abandon_after, start=0, num=SWEEP_BATCH)
        out = []
        for name in due:
            if not await r.zrem(self._pending, name):
                continue  # another replica claimed it
            turn = load(await r.get(name))
            if turn is not None and d.abandoned(turn, now):
                out.append(Signal("abandonment", turn))
        return out
