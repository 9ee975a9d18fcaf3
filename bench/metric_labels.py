"""CPU per request of the gateway's Prometheus bookkeeping (``GatewayMetrics``), as ``Gateway._observe`` does it:
children looked up, request counted, latency, TTFT, TPOT, tokens, cost and goodput observed.

Runs against whichever ``observability`` is first on ``PYTHONPATH``, so the same script measures before and after
a change (``git archive <commit> | tar -x -C /tmp/old`` and ``PYTHONPATH=/tmp/old``). Prints CPU µs per request
(``time.process_time``: other programs on a shared machine inflate wall time, much less CPU time).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from observability import GatewayMetrics


def one_round(m: GatewayMetrics, n: int, keys: int, versions: int) -> float:
    key_ids = [f"key-{i:04d}" for i in range(keys)]
    version_ids = [f"{i:012x}" for i in range(versions)]
    new = hasattr(m, "series")
    started = time.process_time()
    for i in range(n):
        key, version = key_ids[i % keys], version_ids[i % versions]
        if new:
            s = m.series("chat", "m", key, "team-1", version)
            s.ttft.observe(0.05)
            s.tpot.observe(0.01)
            s.count(200)
            s.latency.observe(0.2)
            s.goodput.inc()
            s.input.inc(20)
            s.output.inc(16)
            s.cost.inc(0.0001)
        else:  # before the per-tenant labels: (route, model) only
            latency, ttft, tpot, inp, out, cost = m.for_request("chat", "m")
            ttft.observe(0.05)
            tpot.observe(0.01)
            m.count_request("chat", "m", 200)
            latency.observe(0.2)
            m.count_goodput("chat", "m")
            inp.inc(20)
            out.inc(16)
            cost.inc(0.0001)
    return (time.process_time() - started) / n * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--requests", type=int, default=200_000)
    p.add_argument("--keys", type=int, default=20)
    p.add_argument("--versions", type=int, default=3)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    m = GatewayMetrics()
    one_round(m, 1000, args.keys, args.versions)  # warm-up: children created
    cpu = [one_round(m, args.requests, args.keys, args.versions) for _ in range(args.rounds)]
    if hasattr(m, "series"):  # the scrape at the bound: every label combination the defaults allow, used once
        full = GatewayMetrics()
        for i in range(5000):  # 100 keys, 50 teams, 20 prompt versions: more combinations than the bound
            s = full.series("chat", "m", f"key-{i % 100}", f"team-{i // 100}", f"{i % 20:012x}")
            for child in (s.latency, s.ttft, s.tpot):
                child.observe(0.1)
            s.count(200)
            s.input.inc(1)
        cpu0 = time.process_time()
        body = full.render()
        lines = body.count(b"\n")
        print(
            f"/metrics with {len(full._series)} label combinations (the default bound, and 'other'): "
            f"{len(body) / 1e6:.1f} MB, {lines:,} lines, rendered in {(time.process_time() - cpu0) * 1000:.0f} ms CPU"
        )
    label = "series(route, model, key, team, version)" if hasattr(m, "series") else "for_request(route, model)"
    print(
        f"{label}: {statistics.median(cpu):.2f} µs CPU per request (median of {args.rounds}, min {min(cpu):.2f}; "
        f"{args.requests:,} requests, {args.keys} keys, {args.versions} prompt versions; load {os.getloadavg()})"
    )


if __name__ == "__main__":
    main()
