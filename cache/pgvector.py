"""The semantic index in PostgreSQL with pgvector, shared by every gateway replica.

One table, ``interlock_semantic_cache``, created on first use (``CREATE EXTENSION vector`` needs a role allowed
to create it, or an admin creates it once). A search filters on the partition (a B-tree index) and ranks that
partition's live rows exactly by cosine distance, so isolation and recall do not depend on an approximate
index. Stored per row: the partition, scope, owner and model (for invalidation), the question's vector and
``Signature`` (hashed tokens: the question's text is never stored) and the answer.

A failing or slow server raises ``CacheUnavailable``; after a failure the server is not asked again for
``retry_after`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import numpy as np
import orjson

from cache.entry import Entry, Invalidation
from cache.errors import CacheUnavailable
from cache.keys import CacheKey
from cache.semantic import Candidate
from cache.verify import Signature

TABLE = "interlock_semantic_cache"


class PgVectorIndex:
    shared = True

    def __init__(self, url: str, dim: int, *, timeout: float = 0.25, pool_size: int = 2, retry_after: float = 1.0):
        # SQLAlchemy-style URLs (postgresql+psycopg://) are accepted as well as libpq ones.
        self.url = url.replace("postgresql+psycopg://", "postgresql://")
        self.dim = dim
        self.timeout = timeout
        self.retry_after = retry_after
        self._pool: asyncio.Queue = asyncio.Queue()
        self._pool_size = pool_size
        self._opened = 0
        self._ready = False
        self._down_until = 0.0
        self._last_purge = 0.0

    async def _connect(self):
        import psycopg
        from pgvector.psycopg import register_vector_async

        conn = await psycopg.AsyncConnection.connect(
            self.url, autocommit=True, connect_timeout=max(1, int(self.timeout))
        )
        if not self._ready:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        await register_vector_async(conn)
        if not self._ready:
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} (id bigserial PRIMARY KEY, partition text NOT NULL, "
                "scope text NOT NULL, owner text NOT NULL, model text NOT NULL, created double precision NOT NULL, "
                f"expires double precision NOT NULL, embedding vector({self.dim}) NOT NULL, "
                "signature bytea NOT NULL, entry bytea NOT NULL)"
            )
            await conn.execute(f"CREATE INDEX IF NOT EXISTS {TABLE}_partition ON {TABLE} (partition, expires)")
            self._ready = True
        return conn

    async def _run(self, fn):
        if self._down_until and time.monotonic() < self._down_until:
            raise CacheUnavailable("postgres", "down, retrying shortly")
        import psycopg

        conn = None
        try:
            async with asyncio.timeout(self.timeout * 4 if not self._ready else self.timeout):
                if self._pool.empty() and self._opened < self._pool_size:
                    self._opened += 1
                    try:
                        conn = await self._connect()
                    except BaseException:
                        self._opened -= 1
                        raise
                else:
                    conn = await self._pool.get()
                result = await fn(conn)
            self._pool.put_nowait(conn)
            self._down_until = 0.0
            return result
        except (psycopg.Error, OSError, TimeoutError) as exc:
            if conn is not None:
                self._opened -= 1
                await _close_quietly(conn)
            self._down_until = time.monotonic() + self.retry_after
            raise CacheUnavailable("postgres", type(exc).__name__) from exc

    async def search(
        self, partition: str, vector: np.ndarray, k: int, traceparent: str | None = None
    ) -> list[Candidate]:
        async def q(conn):
            cur = await conn.execute(
                f"SELECT 1 - (embedding <=> %s) AS sim, signature, entry, embedding FROM {TABLE} "
                "WHERE partition = %s AND expires > %s ORDER BY embedding <=> %s LIMIT %s",
                (vector, partition, time.time(), vector, k),
            )
            return await cur.fetchall()

        rows = await self._run(q)
        return [
            Candidate(float(s), Signature.from_json(orjson.loads(sig)), Entry.loads(e), v.to_numpy().astype(np.float32))
            for s, sig, e, v in rows
        ]

    async def add(self, key: CacheKey, vector: np.ndarray, signature: Signature, entry: Entry, ttl: int) -> None:
        now = time.time()
        purge = now - self._last_purge > 60
        if purge:
            self._last_purge = now

        async def q(conn):
            await conn.execute(
                f"INSERT INTO {TABLE} (partition, scope, owner, model, created, expires, embedding, signature, entry)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (key.partition, key.scope, key.owner, key.model, entry.created, now + ttl, vector,
                 orjson.dumps(signature.to_json()), entry.dumps()),
            )  # fmt: skip
            if purge:
                await conn.execute(f"DELETE FROM {TABLE} WHERE expires < %s", (now,))

        await self._run(q)

    async def clear(self, what: Invalidation) -> int:
        where, args = ["TRUE"], []
        for column, value in (("scope", what.scope), ("owner", what.owner), ("model", what.model)):
            if value is not None:
                where.append(f"{column} = %s")
                args.append(value)
        if what.older_than is not None:
            where.append("created <= %s")
            args.append(time.time() - what.older_than)

        async def q(conn):
            cur = await conn.execute(f"DELETE FROM {TABLE} WHERE {' AND '.join(where)}", args)
            return cur.rowcount

        old, self.timeout = self.timeout, max(self.timeout, 10.0)  # an admin purge may take longer than a lookup
        try:
            return await self._run(q)
        finally:
            self.timeout = old

    async def aclose(self) -> None:
        while not self._pool.empty():
            await _close_quietly(self._pool.get_nowait())
        self._opened = 0


async def _close_quietly(conn) -> None:
    with contextlib.suppress(Exception):  # closing a broken connection: nothing more to learn
        await conn.close()
