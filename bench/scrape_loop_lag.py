"""How late is the event loop while /metrics renders? ``.venv/bin/python bench/scrape_loop_lag.py [--renders 15]``

In one process, no server: a ``GatewayMetrics`` filled to its label bound (200 combinations, ~5,900 lines, as in
``bench/metric_labels.py``) is rendered ``--renders`` times, each time while the loop wakes up from a 0.5 ms timer
over and over (a wake-up is what the loop does when a request's bytes arrive). Per render: the longest and the
median lateness of those wake-ups. Printed as the median over renders, for a render on the loop (as before
``observability.scrape``) and through ``Exposition`` in a worker thread with the interpreter's switch interval left at
5 ms and lowered to 2 and 0.5 ms. Pin it to one core (``taskset -c 0``), as a gateway worker is in the benchmarks.
Runs whichever ``observability`` is first on ``PYTHONPATH`` (before ``observability.scrape``: the loop row only).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time

from observability import GatewayMetrics

TICK = 0.0005


def filled() -> GatewayMetrics:
    m = GatewayMetrics()
    for i in range(5000):  # 100 keys, 50 teams, 20 prompt versions: more combinations than the bound
        s = m.series("chat", "m", f"key-{i % 100}", f"team-{i // 100}", f"{i % 20:012x}")
        for child in (s.latency, s.ttft, s.tpot):
            child.observe(0.1)
        s.count(200)
        s.input.inc(1)
        s.output.inc(1)
        s.cost.inc(0.001)
        s.goodput.inc()
    return m


async def lateness(render, renders: int) -> dict:
    worst, median = [], []
    for _ in range(renders):
        late = []
        task = asyncio.ensure_future(render())
        while not task.done():
            started = time.perf_counter()
            await asyncio.sleep(TICK)
            late.append((time.perf_counter() - started - TICK) * 1000)
        await task
        worst.append(max(late))
        median.append(statistics.median(late))
    return {
        "worst_wakeup_ms": round(statistics.median(worst), 2),
        "median_wakeup_ms": round(statistics.median(median), 2),
    }


async def run(renders: int) -> dict:
    m = filled()
    cpu = time.process_time()
    m.render()
    out: dict = {"render_cpu_ms": round((time.process_time() - cpu) * 1000, 1), "lines": m.render().count(b"\n")}

    async def on_loop() -> None:
        m.render()

    out["on_loop"] = await lateness(on_loop, renders)
    try:
        from observability.scrape import Exposition
    except ImportError:  # before the change: only the render on the loop
        return out
    for switch in (None, 0.002, 0.0005):
        exposition = Exposition(m.render, ttl=0, switch_interval=switch)
        out[f"thread_switch_{switch or 'default'}"] = await lateness(exposition.body, renders)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--renders", type=int, default=15)
    args = p.parse_args()
    out = asyncio.run(run(args.renders))
    load = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps({**out, "renders": args.renders, "affinity": sorted(os.sched_getaffinity(0)), "load": load}))


if __name__ == "__main__":
    main()
