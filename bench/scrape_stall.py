"""Does a Prometheus scrape stall the gateway's requests? ``.venv/bin/python bench/scrape_stall.py [--seconds 10]``

One emulated vLLM worker and one ``interlock serve`` process (its own core, records in SQLite, tracing off). The
gateway's registry is first filled to its label bound (``max_series``: 200 combinations, ~5,900 lines of
/metrics) with chat requests that each carry another system prompt (a prompt version each). Then one request at a
time for ``--seconds`` (a raw keep-alive socket, ``tail_probe.drive``), twice: while nothing scrapes (``quiet``),
and while another process scrapes ``GET /metrics`` every ``--scrape-every`` seconds (``scraping``; each scrape
renders: ``--cache-seconds 0``). A scrape rendered on the event loop shows up as the max and p99 of the requests.
The gateway's CPU per phase is printed too (a machine shared with other work inflates wall times, much less CPU).

Runs whichever ``services``/``observability`` is first on ``PYTHONPATH``, so the same script measures before and
after a change (``git archive <commit> | tar -x -C /tmp/old`` and ``PYTHONPATH=/tmp/old``).
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import tempfile
import time
from pathlib import Path

from _processes import Processes, free_port, pin_self
from _targets import start_gateway
from tail_probe import drive, report, request_bytes

from interlock.emulator import EmulatorServer
from interlock.settings import ObservabilityConfig

MODEL = "mock"


def fill(port: int, versions: int) -> None:
    """One request per system prompt: each is a prompt version, so each a label combination of its own."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for i in range(versions):
        messages = [{"role": "system", "content": f"You are assistant number {i}."}, {"role": "user", "content": "hi"}]
        body = json.dumps({"model": MODEL, "max_tokens": 4, "messages": messages})
        conn.request("POST", "/v1/chat/completions", body, {"content-type": "application/json"})
        if (answer := conn.getresponse()).status != 200:
            raise SystemExit(f"fill: status {answer.status}: {answer.read()[:200]!r}")
        answer.read()
    conn.close()


def scrape(port: int, seconds: float, every: float, cpu: int, out: multiprocessing.Queue) -> None:
    """In another process (no GIL shared with the client): ``GET /metrics`` until ``seconds`` have passed."""
    pin_self(cpu)
    spans, size = [], 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        started = time.perf_counter()  # CLOCK_MONOTONIC: the same clock as the client's, in another process
        conn.request("GET", "/metrics")
        size = len(conn.getresponse().read())
        spans.append((started, time.perf_counter()))
        conn.close()
        time.sleep(every)
    out.put((spans, size))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def phase(port: int, pid: int, args: argparse.Namespace, scraping: bool) -> dict:
    queue: multiprocessing.Queue = multiprocessing.Queue()
    scraper = multiprocessing.Process(target=scrape, args=(port, args.seconds, args.scrape_every, 1, queue))
    cpu0 = cpu_seconds(pid)
    if scraping:
        scraper.start()
    t0 = time.perf_counter()  # drive's own zero, within microseconds
    samples = drive("127.0.0.1", port, request_bytes(f"http://127.0.0.1:{port}", "unused", MODEL)[2], args.seconds)
    result = {k: v for k, v in report(samples, args.slow).items() if k != "slow_clusters"}
    result["over_20ms"] = sum(ms > 20 for _, ms in samples)
    result["gateway_cpu_s"] = round(cpu_seconds(pid) - cpu0, 2)
    if scraping:
        spans, size = queue.get(timeout=60)
        scraper.join(10)
        # The slowest request that overlapped each scrape: what one scrape cost the requests in flight. Its median
        # over the scrapes is little moved by other programs' bursts, which the max and p99.9 catch as well.
        worst = sorted(
            max((ms for at, ms in samples if t0 + at < end and t0 + at + ms / 1000 > start), default=0.0)
            for start, end in spans
        )
        scrape_ms = sorted((end - start) * 1000 for start, end in spans)
        result["scrapes"] = {"count": len(spans), "bytes": size, "median_ms": round(scrape_ms[len(spans) // 2], 1),
                             "worst_request_during_scrape_median_ms": round(worst[len(worst) // 2], 2),
                             "worst_request_during_scrape_max_ms": round(worst[-1], 2)}  # fmt: skip
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--scrape-every", type=float, default=0.25, help="pause between two scrapes (s)")
    p.add_argument("--versions", type=int, default=220, help="system prompts sent to fill the registry")
    p.add_argument("--cache-seconds", type=float, default=0.0, help="metrics_cache_seconds (0: render every scrape)")
    p.add_argument("--slow", type=float, default=5.0, help="ms above which a request counts as slow")
    args = p.parse_args()
    pin_self(1)  # the client, the emulator and the scraper; the gateway alone on core 0
    folder = Path(tempfile.mkdtemp(prefix="scrape-stall-"))
    labels = {"max_keys": 100, "max_teams": 50, "max_prompt_versions": args.versions, "max_series": 200}
    extra = {"observability": {"tracing": False, "metrics": True, "metric_labels": labels}}
    if "metrics_cache_seconds" in ObservabilityConfig.model_fields:  # absent before the cache: renders every scrape
        extra["observability"]["metrics_cache_seconds"] = args.cache_seconds
    with (
        Processes(folder) as procs,
        EmulatorServer(port=0, served_model_names=[MODEL], output_tokens=16, ttft_ms=0, tpot_ms=0) as worker,
    ):
        port = free_port()
        gw = start_gateway(procs, "gateway", cpu=0, port=port, upstream_url=worker.url, model=MODEL,
                           database_url=f"sqlite:///{folder}/gw.db", otlp_endpoint="", extra=extra)  # fmt: skip
        fill(port, args.versions)
        lines = http.client.HTTPConnection("127.0.0.1", port)
        lines.request("GET", "/metrics")
        exposition = lines.getresponse().read()
        drive("127.0.0.1", port, request_bytes(f"http://127.0.0.1:{port}", "unused", MODEL)[2], 1.0)  # warm-up
        out = {
            "conditions": {"seconds": args.seconds, "scrape_every_s": args.scrape_every, "concurrency": 1,
                           "metrics_lines": exposition.count(b"\n"), "metrics_bytes": len(exposition),
                           "cores": os.cpu_count(), "load_before": [round(x, 2) for x in os.getloadavg()]},
            "quiet": phase(port, gw.pid, args, scraping=False),
            "scraping": phase(port, gw.pid, args, scraping=True),
        }  # fmt: skip
        out["conditions"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
