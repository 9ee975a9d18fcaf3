"""What the output guards' hold-back costs a stream: ``.venv/bin/python bench/guard_output_stream.py [--n 40]``.

One emulated vLLM worker (``--tpot-ms`` per token after the first, 32 tokens an answer) behind one in-process
gateway with guardrails on and two models on the same worker: ``plain`` (no policy) and ``held`` (output rules
``keywords`` and ``refusal`` on a sliding window, ``hold_back_tokens`` = ``--hold``). Streams ``--n`` chat requests
to each, one at a time, and reports client-side time to the first content chunk (p50/p90, ms), the whole stream,
and the chunks held back (the gateway's ``interlock_guardrail_stream_held_chunks``). The added TTFT is about
``hold`` x TPOT (the tokens waited for) plus one window judgement per chunk. Conditions are printed with the
figures; other load on the machine is not controlled.

``--rules pii`` (any comma list of output rules; ``pii:mask`` for an action other than block) with ``--tpot-ms 0``
and ``--tokens 128`` measures what the window's judgement costs per chunk: the whole stream's time and this
process's CPU time (the gateway runs in it; the client too, which the ``plain`` run subtracts) per content chunk.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import openai

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from interlock.emulator import EmulatorServer
from tests.e2e.guardrails.conftest import _running
from tests.support.gateway import model


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 2)


def measure(url: str, name: str, n: int, tokens: int = 32) -> dict:
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    ttft, total = [], []
    cpu = time.process_time()
    for i in range(n):
        started = time.perf_counter()
        first = None
        stream = client.chat.completions.create(
            model=name,
            messages=[{"role": "user", "content": f"Tell me about rivers and lakes, part {i}."}],
            stream=True,
        )
        for chunk in stream:
            if first is None and chunk.choices and chunk.choices[0].delta.content:
                first = time.perf_counter()
        ttft.append(((first or time.perf_counter()) - started) * 1000)
        total.append((time.perf_counter() - started) * 1000)
    cpu_chunk = (time.process_time() - cpu) * 1000 / (n * tokens)
    out = {"ttft_p50_ms": pct(ttft, 0.5), "ttft_p90_ms": pct(ttft, 0.9), "stream_p50_ms": pct(total, 0.5)}
    return out | {"cpu_ms_per_chunk": round(cpu_chunk, 3), "wall_ms_per_chunk": round(pct(total, 0.5) / tokens, 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--hold", type=int, default=8)
    ap.add_argument("--tpot-ms", type=float, default=10.0)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--rules", default="keywords,refusal")
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="guard-output-bench-"))
    rules = [[*r.split(":"), "block"] for r in args.rules.split(",")]
    policy = {"output": {r[0]: {"action": r[1]} for r in rules}}
    policy["output_actions"] = {"hold_back_tokens": args.hold}
    with EmulatorServer(port=0, served_model_names=["m"], tpot_ms=args.tpot_ms, output_tokens=args.tokens) as worker:
        settings = {
            "database": {"url": f"sqlite:///{folder}/gw.db"},
            "models": [model(n, worker.url, upstream_model="m") for n in ("plain", "held")],
            "guardrails": {
                "enabled": True,
                "keywords": {"keywords": ["Project Falcon"]},
                "policies": {"held": policy},
                "attach": {"models": {"held": "held"}},
            },
        }
        with _running(settings) as url:
            measure(url, "plain", 3)  # warm-up: connections, first-use paths
            measure(url, "held", 3)
            plain, held = measure(url, "plain", args.n, args.tokens), measure(url, "held", args.n, args.tokens)
            import httpx

            metrics = httpx.get(url + "/metrics").text
    held_sum = [ln for ln in metrics.splitlines() if ln.startswith("interlock_guardrail_stream_held_chunks_sum")]
    held_count = [ln for ln in metrics.splitlines() if ln.startswith("interlock_guardrail_stream_held_chunks_count")]
    report = {
        "conditions": {
            "n": args.n,
            "hold_back_tokens": args.hold,
            "tpot_ms": args.tpot_ms,
            "tokens": args.tokens,
            "rules": args.rules,
            "load_1min": os.getloadavg()[0],
            "cpus": os.cpu_count(),
            "concurrency": 1,
        },
        "plain": plain,
        "held": held,
        "added_ttft_p50_ms": round(held["ttft_p50_ms"] - plain["ttft_p50_ms"], 2),
        "added_cpu_ms_per_chunk": round(held["cpu_ms_per_chunk"] - plain["cpu_ms_per_chunk"], 3),
        "held_chunks_mean": round(float(held_sum[0].split()[-1]) / float(held_count[0].split()[-1]), 2)
        if held_sum and held_count
        else None,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
