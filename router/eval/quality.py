"""Quality of the intent router, measured the way admins use it: through a running gateway's HTTP API.

    .venv/bin/python -m router.eval.quality [--k 5 10 all] [--out bench/results/router_quality.json]

For each k, a router is trained through ``PUT /admin/routers/{name}`` from k examples per intent of banking77's
training split (every intent but the held-out ones), then every test utterance goes through ``POST /v1/route``:

- in-scope accuracy: share of test utterances of trained intents routed to their intent (a decline counts wrong);
- out-of-scope recall, near: share of test utterances of the held-out banking intents that are declined
  (``intent: null``): unseen intents of the same domain, the hard case;
- out-of-scope recall, far: share of chat prompts (AlpacaEval, MT-bench) that are declined;
- training time: the PUT's wall time (embedding included, nothing cached between runs).

Nothing here is tuned to banking: the router ships one calibration, fitted on held-out folds of whatever examples
it gets. Needs ../shared/data (skips with a message when absent).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import csv
import json
import random
import tempfile
import threading
import time
from pathlib import Path

import httpx

from router.eval import DATA

ADMIN = {"Authorization": "Bearer quality-admin"}
#: Every 8th intent in sorted order is held out of training (10 of 77): a deterministic, domain-neutral pick.
HOLD_EVERY = 8


def load_banking() -> tuple[dict[str, list[str]], list[tuple[str, str]]]:
    base = DATA / "intent" / "banking77"
    train: dict[str, list[str]] = collections.defaultdict(list)
    for row in _csv(base / "train.csv"):
        train[row["category"]].append(row["text"])
    test = [(row["text"], row["category"]) for row in _csv(base / "test.csv")]
    return train, test


def _csv(path: Path) -> list[dict]:
    return list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))


def load_far(n: int = 300) -> list[str]:
    out = []
    alpaca = DATA / "chat" / "alpaca_eval"
    for path in sorted(alpaca.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        out += [r["instruction"] for r in data if isinstance(r, dict) and r.get("instruction")]
    for path in sorted((DATA / "chat" / "mt_bench").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            turns = row.get("turns") or []
            if turns:
                out.append(turns[0])
    random.Random(0).shuffle(out)
    return [t[:2000] for t in out[:n]]


def start_gateway(folder: str):
    import uvicorn

    from interlock.settings import load_settings
    from services.gateway.app import GatewayApp

    port = _free_port()
    settings = load_settings(
        None,
        server={"port": port},
        database={"url": f"sqlite:///{folder}/quality.db"},
        access={"admin_tokens": {"quality-admin": "admin"}},
        observability={"tracing": False, "recorder": "thread"},
    )
    server = uvicorn.Server(uvicorn.Config(GatewayApp(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server, thread


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def route_all(url: str, router: str, texts: list[str], concurrency: int = 16) -> list[dict]:
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=120) as client:

        async def one(text: str) -> dict:
            async with sem:
                body = {"router": router, "messages": [{"role": "user", "content": text}]}
                r = await client.post(url + "/v1/route", json=body)
                r.raise_for_status()
                return r.json()

        return await asyncio.gather(*(one(t) for t in texts))


def banking_definition(train: dict[str, list[str]], k: int | None, offset: int = 0) -> tuple[dict, set[str]]:
    """The router definition trained from ``k`` examples per intent (``None``: all), every ``HOLD_EVERY``-th intent
    (from ``offset``) held out as near out-of-scope queries; returns it and the held intents."""
    intents = sorted(train)
    held = set(intents[offset::HOLD_EVERY])
    rng = random.Random(offset)
    definition = {
        "intents": [
            {
                "name": name,
                "examples": train[name] if k is None else rng.sample(train[name], min(k, len(train[name]))),
                "target": {"reply": name},
            }
            for name in intents
            if name not in held
        ],
        "out_of_scope": {"target": {"reply": "Sorry, I can only help with your bank account."}},
    }
    return definition, held


def evaluate(url: str, k: int | None, train, test, far) -> dict:
    definition, held = banking_definition(train, k)
    name = f"banking-k{k or 'all'}"
    examples = sum(len(i["examples"]) for i in definition["intents"])
    t0 = time.perf_counter()
    r = httpx.put(f"{url}/admin/routers/{name}", json=definition, headers=ADMIN, timeout=3600)
    train_s = time.perf_counter() - t0
    r.raise_for_status()
    info = r.json()
    decisions = asyncio.run(route_all(url, name, [t for t, _ in test]))
    far_decisions = asyncio.run(route_all(url, name, far))
    ins = [(d, c) for d, (_, c) in zip(decisions, test, strict=True) if c not in held]
    oos = [d for d, (_, c) in zip(decisions, test, strict=True) if c in held]
    return {
        "router": name,
        "k": k or "all",
        "intents": len(definition["intents"]),
        "examples": examples,
        "train_s": round(train_s, 1),
        "training": info.get("training"),
        "in_scope_accuracy": round(sum(d["intent"] == c for d, c in ins) / len(ins), 4),
        "in_scope_top1_if_answered": round(
            sum(d["intent"] == c for d, c in ins) / max(1, sum(d["intent"] is not None for d, _ in ins)), 4
        ),
        "in_scope_declined": round(sum(d["intent"] is None for d, _ in ins) / len(ins), 4),
        "oos_recall_near": round(sum(d["intent"] is None for d in oos) / len(oos), 4),
        "oos_recall_far": round(sum(d["intent"] is None for d in far_decisions) / len(far_decisions), 4),
        "reasons": dict(collections.Counter(d["reason"] for d in decisions)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", nargs="+", default=["5", "10", "all"])
    parser.add_argument("--out", default=None, help="write the results as JSON here too")
    args = parser.parse_args()
    if not (DATA / "intent" / "banking77" / "train.csv").exists():
        raise SystemExit(f"skipped: {DATA}/intent/banking77 is not here (the shared data sets are absent)")
    train, test = load_banking()
    far = load_far()
    results = []
    with tempfile.TemporaryDirectory() as folder:
        url, server, thread = start_gateway(folder)
        try:
            for k in args.k:
                result = evaluate(url, None if k == "all" else int(k), train, test, far)
                print(json.dumps(result), flush=True)
                results.append(result)
        finally:
            server.should_exit = True
            thread.join(30)
    print("\n| k | intents | examples | train s | in-scope acc | declined | OOS recall near | OOS recall far |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['k']} | {r['intents']} | {r['examples']} | {r['train_s']} | {r['in_scope_accuracy']:.3f} | "
            f"{r['in_scope_declined']:.3f} | {r['oos_recall_near']:.3f} | {r['oos_recall_far']:.3f} |"
        )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
