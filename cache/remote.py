"""``RemoteSemanticIndex``: the semantic index of a cache service (``services/cache``), shared by replicas.

The same ``SemanticIndex`` role as the in-process and pgvector indexes, over HTTP: vectors travel as float32
bytes (base64), entries and signatures as the forms they are stored in; a lookup carries the caller's W3C
``traceparent``, so the service's span joins the request's trace. A service that fails or is slow raises
``CacheUnavailable``; after a failure it is not asked again for ``retry_after`` seconds.
"""

from __future__ import annotations

import base64
import time

import numpy as np

from cache.entry import Entry, Invalidation
from cache.errors import CacheUnavailable
from cache.keys import CacheKey
from cache.semantic import Candidate
from cache.verify import Signature


def vector_to_wire(v: np.ndarray) -> str:
    return base64.b64encode(np.asarray(v, dtype=np.float32).tobytes()).decode()


def vector_from_wire(s: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), dtype=np.float32)


class RemoteSemanticIndex:
    shared = True
    remote = True

    def __init__(self, url: str, *, timeout: float = 0.25, retry_after: float = 1.0) -> None:
        import httpx

        self._client = httpx.AsyncClient(base_url=url.rstrip("/"), timeout=timeout)
        self._errors = (httpx.HTTPError,)
        self.retry_after = retry_after
        self._down_until = 0.0

    async def _call(self, method: str, path: str, **kw) -> dict:
        if self._down_until and time.monotonic() < self._down_until:
            raise CacheUnavailable("cache-service", "down, retrying shortly")
        try:
            r = await self._client.request(method, path, **kw)
            r.raise_for_status()
        except self._errors as exc:
            self._down_until = time.monotonic() + self.retry_after
            raise CacheUnavailable("cache-service", type(exc).__name__) from exc
        self._down_until = 0.0
        return r.json()

    async def search(
        self, partition: str, vector: np.ndarray, k: int, traceparent: str | None = None
    ) -> list[Candidate]:
        body = {"partition": partition, "vector": vector_to_wire(vector), "k": k}
        headers = {"traceparent": traceparent} if traceparent is not None else None
        data = await self._call("POST", "/search", json=body, headers=headers)
        return [
            Candidate(
                c["similarity"], Signature.from_json(c["signature"]), Entry.loads(base64.b64decode(c["entry"])),
                vector_from_wire(c["vector"]) if "vector" in c else None,  # a service older than the verifier
            )
            for c in data["candidates"]
        ]  # fmt: skip

    async def add(self, key: CacheKey, vector: np.ndarray, signature: Signature, entry: Entry, ttl: int) -> None:
        await self._call(
            "POST",
            "/entries",
            json={
                "scope": key.scope, "owner": key.owner, "model": key.model, "partition": key.partition,
                "vector": vector_to_wire(vector), "signature": signature.to_json(),
                "entry": base64.b64encode(entry.dumps()).decode(), "ttl": ttl,
            },
        )  # fmt: skip

    async def clear(self, what: Invalidation) -> int:
        params = {k: v for k, v in (("scope", what.scope), ("owner", what.owner), ("model", what.model),
                                    ("older_than", what.older_than)) if v is not None}  # fmt: skip
        return int((await self._call("DELETE", "/entries", params=params))["semantic"])

    async def aclose(self) -> None:
        await self._client.aclose()
