"""Intent router: decision latency (embedding included, one core) and the memory of a large router.

    .venv/bin/python bench/router_decision.py [--queries 300] [--intents 300] [--per-intent 40]

1. A router trained on banking77 (5 examples per intent, 77 intents) decides for ``--queries`` test utterances
   one at a time, the way the gateway does for one request: one embedding (the packaged int8 MiniLM, ONNX Runtime
   on 1 thread, in the calling thread) plus the head's decision. Reported: p50/p90/p99 of the whole (wall clock),
   of its CPU time (the calling thread's: what it costs a core of its own, whatever else the machine runs), and
   of the head alone. As in the gateway, a declined query with a correctable typo is embedded and decided a
   second time (``second_look_share``: how many were).
2. Memory of a router with ``--intents`` intents of ``--per-intent`` examples: its stored weights (what the
   database holds and a replica loads) and the Python heap it takes once loaded (tracemalloc), definition included.
   The head's arrays have exactly the shapes training produces; their values are random (memory does not
   depend on them, and training 300 intents here would only measure the embedder again).

The load average is printed with the figures: on a shared machine the embedding dominates and moves with it.
"""

from __future__ import annotations

import argparse
import collections
import csv
import os
import random
import statistics
import time
import tracemalloc

import numpy as np

from router.eval import DATA as _SHARED

DATA = _SHARED / "intent" / "banking77"


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def latency(queries: int) -> dict:
    from embeddings import EmbeddingConfig, load_embedder
    from router.intent import parse_definition, train

    rows = list(csv.DictReader((DATA / "train.csv").read_text(encoding="utf-8").splitlines()))
    test = [r["text"] for r in csv.DictReader((DATA / "test.csv").read_text(encoding="utf-8").splitlines())]
    by = collections.defaultdict(list)
    for r in rows:
        by[r["category"]].append(r["text"])
    rng = random.Random(0)
    definition = parse_definition(
        {"intents": [{"name": c, "examples": rng.sample(ex, 5), "target": {"reply": c}} for c, ex in by.items()]}
    )
    embedder = load_embedder(EmbeddingConfig(threads=1))
    router = train("bench", 1, definition, embedder.embed, embedder.name)
    sample = rng.sample(test, queries)
    for text in sample[:20]:  # warm-up
        router.decide(embedder.embed([text])[0], text)
    total, head, cpu, second = [], [], [], 0
    for text in sample:
        c0 = time.thread_time()
        t0 = time.perf_counter()
        vector = embedder.embed([text])[0]
        t1 = time.perf_counter()
        decision = router.decide(vector, text)
        t2 = time.perf_counter()
        fixed = router.second_look(decision, text)  # as ``LocalRouting``: a declined query with a typo, again
        if fixed is not None:
            second += 1
            router.decide(embedder.embed([fixed])[0], text)
        t3 = time.perf_counter()
        cpu.append((time.thread_time() - c0) * 1000)
        total.append((t3 - t0) * 1000)
        head.append((t2 - t1) * 1000)
    return {
        "queries": queries,
        "decision_ms": {"p50": pct(total, 50), "p90": pct(total, 90), "p99": pct(total, 99)},
        "decision_cpu_ms": {"p50": pct(cpu, 50), "p90": pct(cpu, 90), "p99": pct(cpu, 99)},
        "head_only_ms": {"p50": pct(head, 50), "p99": pct(head, 99), "mean": statistics.fmean(head)},
        "second_look_share": round(second / len(sample), 3),
        "train_s_385_examples": router.figures.get("train_s"),
    }


def memory(intents: int, per_intent: int) -> dict:
    from router.intent import Head, IntentRouter, RouterDefinition
    from router.intent.head import SUPPORT_PER_INTENT

    rng = np.random.default_rng(0)
    dim = 384
    kept = min(per_intent * 2, SUPPORT_PER_INTENT)  # typo variants double small sets, capped per intent
    head = Head(
        labels=[f"intent_{i}" for i in range(intents)],
        weights=rng.standard_normal((intents, dim)).astype(np.float32),
        bias=np.zeros(intents, np.float32),
        temperature=1.0,
        thresholds=np.full(intents, 0.5, np.float32),
        floors=np.full(intents, 0.3, np.float32),
        support=rng.standard_normal((intents * kept, dim)).astype(np.float16),
        starts=np.arange(0, intents * kept + 1, kept, dtype=np.int64),
    )
    blob = head.to_bytes()
    words = [
        "card",
        "transfer",
        "account",
        "balance",
        "refund",
        "fee",
        "limit",
        "pin",
        "top",
        "up",
        "exchange",
        "rate",
        "payment",
    ]
    definition = {
        "intents": [
            {
                "name": f"intent_{i}",
                "examples": [" ".join(random.Random(i * 1000 + j).choices(words, k=8)) for j in range(per_intent)],
                "target": {"reply": f"answer {i}"},
            }
            for i in range(intents)
        ]
    }
    tracemalloc.start()
    loaded = IntentRouter("big", 1, RouterDefinition.model_validate(definition), Head.from_bytes(blob))
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert loaded.head.labels[0] == "intent_0"
    return {
        "intents": intents,
        "examples_per_intent": per_intent,
        "stored_weights_mb": round(len(blob) / 1e6, 2),
        "loaded_mb": round(current / 1e6, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--intents", type=int, default=300)
    parser.add_argument("--per-intent", type=int, default=40)
    args = parser.parse_args()
    if not DATA.exists():
        raise SystemExit(f"skipped: {DATA} is absent (the shared data sets)")
    print("load average before:", os.getloadavg())
    print("latency:", latency(args.queries))
    print("memory:", memory(args.intents, args.per_intent))
    print("load average after:", os.getloadavg())


if __name__ == "__main__":
    main()
