"""Benchmark of the caches: ``python -m bench.cache_latency [--requests 2000] [--saturate 10]``.

Starts one emulated vLLM worker and two one-worker gateways (``interlock serve``): *base* with no cache at all
and *cached* with models ``exact`` (exact cache, key scope), ``semantic`` (exact + semantic) and ``plain`` (no
cache section) on the same worker. Measured at concurrency 1, end to end from a Python client on keep-alive
connections, p50/p90/p99 in ms:

- ``direct``: the emulator answering directly (the ceiling an exact hit is compared with);
- ``exact_hit``: the same request again and again (answered from the in-process exact cache);
- ``miss`` vs ``no_cache``: a new question every request, on ``exact`` (looked up, missed, stored) and on
  ``plain`` (no cache section) in the *cached* gateway: the difference is what a miss adds;
- ``untouched``: ``plain`` on the *base* gateway (no cache step at all) vs ``no_cache``: what having caches for
  other models costs a request that no cache applies to;
- ``semantic_hit``: a paraphrase of a stored question each time (exact miss, semantic hit: embedding + search +
  rules + pair verifier); ``semantic_hit_rules_only``: the same on a model with ``learned_verifier: false``;
- ``semantic_lookup_library``: ``embed`` + in-process index search alone (no HTTP), 1,000 entries in the
  partition; ``exact_lookup_library``: CPU per exact-hit lookup (plan + in-process get), no HTTP;
- ``exact_hit_saturation``: exact hits with ``wrk`` (1 thread, 64 connections) when installed, with the CPU the
  gateway process spent per request (``/proc``): the figure that holds on a busy machine.

The machine is whatever runs it: print the conditions with the figures. Results go to stdout as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson
import yaml

from bench import _wrk
from bench._client import percentiles
from bench._processes import Processes, free_port, wait_http

CLI = [sys.executable, "-c", "from interlock.cli import main; main()"]
QUESTIONS = [
    ("How do I reverse a list in Python?", "How can I reverse a Python list?"),
    ("What is the boiling point of water at sea level?", "At sea level, what's the boiling point of water?"),
    ("Explain how photosynthesis works.", "How does photosynthesis work?"),
]


def body(model: str, text: str) -> bytes:
    return orjson.dumps({"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 16,
                         "temperature": 0})  # fmt: skip


async def run(url: str, bodies, n: int) -> dict:
    """``n`` sequential POSTs (concurrency 1); ``bodies(i)`` gives the i-th body; checks the cache header."""
    samples: list[float] = []
    outcomes: dict[str, int] = {}
    async with aiohttp.ClientSession() as session:
        for i in range(n):
            data = bodies(i)
            t0 = time.perf_counter()
            async with session.post(url, data=data, headers={"content-type": "application/json"}) as r:
                await r.read()
            samples.append(time.perf_counter() - t0)
            k = r.headers.get("x-interlock-cache", "-")
            outcomes[k] = outcomes.get(k, 0) + 1
    warm = samples[n // 10 :]  # the first tenth warms connections and caches
    return {"requests": len(warm), "latency_ms": percentiles(warm), "outcomes": outcomes}


async def exact_library(n: int) -> dict:
    """CPU per exact-hit lookup in the library (plan: sampling rules and keys; then the in-process get), the part
    of a hit the cache owns, by ``time.process_time`` over ``n`` lookups: robust on a busy machine."""
    from cache import MemoryExactStore, ModelCacheConfig, ResponseCache, new_entry

    cache = ResponseCache(MemoryExactStore())
    config = ModelCacheConfig()
    request = orjson.loads(body("exact", "Explain photosynthesis."))
    plan = cache.plan("chat", request, "exact", config, key_id="k1", team_id=None)
    await cache.store_exact(plan, new_entry(b"{}", "r", 1, 1))
    started = time.process_time()
    for _ in range(n):
        plan = cache.plan("chat", request, "exact", config, key_id="k1", team_id=None)
        assert await cache.exact(plan) is not None
    return {"lookups": n, "cpu_us_per_lookup": round((time.process_time() - started) / n * 1e6, 2)}


async def semantic_library(n: int) -> dict:
    """The whole semantic lookup in the library (embed, partition search, rules and pair verifier on the near
    candidate) against 1,000 random entries plus one stored question the lookups paraphrase; and the CPU per
    ``PairVerifier.check`` alone."""
    import numpy as np

    from cache import MemoryExactStore, MemorySemanticIndex, ModelCacheConfig, ResponseCache, new_entry
    from embeddings import EmbeddingService, load_embedder

    service = EmbeddingService(load_embedder())
    cache = ResponseCache(MemoryExactStore(), MemorySemanticIndex(service.dim))
    config = ModelCacheConfig(semantic={"enabled": True})

    def plan(text: str):
        return cache.plan("chat", orjson.loads(body("m", text)), "m", config, key_id="k", team_id=None)

    stored = plan("How do I reverse a list in Python?")
    rng = np.random.default_rng(0)
    for _ in range(1000):
        v = rng.standard_normal(service.dim).astype(np.float32)
        await cache.store_semantic(plan("q"), new_entry(b"{}", "r", 1, 1), v / np.linalg.norm(v))
    await cache.store_semantic(stored, new_entry(b"{}", "r", 1, 1), await service.embed_one(stored.key.query))
    asked = ("How can I reverse a Python list?", "How to reverse a list in Python", "Reverse a Python list: how?")
    samples, hits = [], 0
    for i in range(n):
        t0 = time.perf_counter()
        p = plan(asked[i % len(asked)] + " " * (i // len(asked) % 7))  # new text each time: no memo helps
        found = await cache.semantic(p, await service.embed_one(p.key.query))
        samples.append(time.perf_counter() - t0)
        hits += found.entry is not None
    u, v = await service.embed_one(stored.key.query), await service.embed_one(asked[0])
    a, b = stored.signature or signature_of(stored), signature_of(plan(asked[0]))
    started = time.process_time()
    for _ in range(5000):
        cache.verifier.check(u, v, a, b)
    check_us = (time.process_time() - started) / 5000 * 1e6
    service.close()
    return {"requests": n, "latency_ms": percentiles(samples[n // 10 :]), "partition_entries": 1001, "hits": hits,
            "pair_verifier_cpu_us_per_check": round(check_us, 1)}  # fmt: skip


def signature_of(plan):
    from cache import signature

    return signature(plan.key.query)


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux ``/proc``)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def config(emulator: str, port: int, cached: bool, tmp: Path, name: str) -> Path:
    def m(model: str, cache: dict | None) -> dict:
        return {"name": model, "deployments": [{"kind": "vllm", "url": emulator, "model": "m"}], "cache": cache}

    models = [m("plain", None)]
    if cached:
        models += [
            m("exact", {"scope": "key"}),
            m("semantic", {"scope": "key", "semantic": {"enabled": True}}),
            m("semantic_rules", {"scope": "key", "semantic": {"enabled": True, "learned_verifier": False}}),
        ]
    cfg = {"server": {"port": port}, "models": models, "database": {"url": f"sqlite:///{tmp}/{name}.db"}}
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--saturate", type=float, default=10.0, help="seconds of wrk at saturation (0: skip)")
    args = parser.parse_args()
    n = args.requests
    tmp = Path(tempfile.mkdtemp(prefix="interlock-cache-bench-"))
    out: dict = {"conditions": {"cpus": os.cpu_count(), "load_avg": os.getloadavg(), "requests_per_run": n}}
    with Processes(tmp) as procs:
        ep = free_port()
        emu = procs.start("emulator", [*CLI, "emulator", "--port", str(ep), "--served-model-name", "m"])
        wait_http(emu, "127.0.0.1", ep, "/health", 30)
        emulator = f"http://127.0.0.1:{ep}"
        ports, procs_pids = {}, {}
        for name, cached in (("base", False), ("cached", True)):
            port = ports[name] = free_port()
            gw = procs.start(name, [*CLI, "serve", "--config", str(config(emulator, port, cached, tmp, name))])
            wait_http(gw, "127.0.0.1", port, "/health", 90)
            procs_pids[name] = gw.pid
        base = f"http://127.0.0.1:{ports['base']}/v1/chat/completions"
        cached = f"http://127.0.0.1:{ports['cached']}/v1/chat/completions"

        def fresh(model):
            return lambda i: body(model, f"Explain topic number {i} of the syllabus.")

        r = out["results"] = {}
        r["direct"] = asyncio.run(run(emulator + "/v1/chat/completions", lambda i: body("m", "Hi there"), n))
        r["exact_hit"] = asyncio.run(run(cached, lambda i: body("exact", "Explain photosynthesis."), n))
        r["no_cache"] = asyncio.run(run(cached, fresh("plain"), n))
        r["miss"] = asyncio.run(run(cached, fresh("exact"), n))
        r["untouched"] = asyncio.run(run(base, fresh("plain"), n))
        for q, _ in QUESTIONS:  # stored once, then asked in other words
            for name in ("semantic", "semantic_rules"):
                asyncio.run(run(cached, lambda i, q=q, name=name: body(name, q), 2))
        time.sleep(0.5)
        for name, label in (("semantic_rules", "semantic_hit_rules_only"), ("semantic", "semantic_hit")):
            r[label] = asyncio.run(
                run(cached, lambda i, name=name: body(name, QUESTIONS[i % 3][1] + " " * (i // 3 % 50)), min(n, 600))
            )
        r["semantic_lookup_library"] = asyncio.run(semantic_library(min(n, 500)))
        r["exact_lookup_library"] = asyncio.run(exact_library(50_000))
        if args.saturate and _wrk.available():
            pid = procs_pids["cached"]
            before = process_cpu(pid)
            sat = r["exact_hit_saturation"] = _wrk.run(
                cached, body("exact", "Explain photosynthesis."), 64, args.saturate, tmp
            )
            # CPU the gateway process spent per hit: robust where req/s depends on what else the machine runs.
            sat["gateway_cpu_us_per_request"] = round((process_cpu(pid) - before) / max(1, sat["requests"]) * 1e6, 1)
        p50 = {k: v["latency_ms"].get("p50") for k, v in r.items() if "latency_ms" in v}
        out["summary"] = {
            "exact_hit_p50_ms": p50["exact_hit"],
            "direct_p50_ms": p50["direct"],
            "exact_hit_over_direct": round(p50["exact_hit"] / p50["direct"], 2),
            "miss_adds_p50_ms": round(p50["miss"] - p50["no_cache"], 3),
            "cache_step_cost_for_uncached_p50_ms": round(p50["no_cache"] - p50["untouched"], 3),
            "semantic_hit_p50_ms": p50["semantic_hit"],
            "semantic_lookup_library_p50_ms": p50["semantic_lookup_library"],
            "exact_hit_saturation_rps": r.get("exact_hit_saturation", {}).get("requests_per_s"),
            "exact_hit_gateway_cpu_us": r.get("exact_hit_saturation", {}).get("gateway_cpu_us_per_request"),
            "exact_lookup_library_cpu_us": r["exact_lookup_library"]["cpu_us_per_lookup"],
        }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
