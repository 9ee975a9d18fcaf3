"""Soak: sustained saturation of one gateway worker with every feature on, and the memory of both its processes.

    .venv/bin/python bench/soak.py --requests 1000000 --json-out bench/results/soak.json

Starts the vLLM emulator and an OTLP sink (core 1) and one gateway worker (core 0; its recorder process shares
that core) with a key required, RPM/TPM/concurrency limits and a daily budget in Redis, SQLite records and
OTLP tracing, then drives it with ``wrk -c8`` in slices of ``--slice`` seconds until ``--requests`` requests were
served or ``--minutes`` passed. After each slice it samples the resident memory of the gateway process and of its
recorder, and the gateway's own counts: records pending, spans dropped, traces shed and the share of traces kept.
At the end it waits for the recorder to write what is pending and checks that every request has a record.

Memory is bounded when the RSS of each process levels off: the report gives the first and the last slice,
the peak, and the growth over the second half of the run (which should be near 0). Needs wrk and Redis.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _bench
import _conditions
import _targets
import _wrk
import orjson
from _processes import Processes, free_port, pin_self

from interlock.emulator import EmulatorServer

METRICS = (
    "interlock_records_pending",
    "interlock_spans_dropped",
    "interlock_traces_shed",
    "interlock_trace_keep_ratio",
    "interlock_recorder_up",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=1_000_000, help="stop after this many requests")
    p.add_argument("--minutes", type=float, default=60.0, help="stop after this long whatever the count")
    p.add_argument("--slice", type=float, default=30.0, help="seconds per wrk run between samples")
    p.add_argument("--connections", type=int, default=8)
    p.add_argument(
        "--upstream",
        help="an OpenAI-compatible upstream serving model 'mock' (e.g. ../shared/bench's nginx) instead of the "
        "emulator: a Python emulator on a busy core can be the bottleneck instead of the gateway",
    )
    p.add_argument("--redis", default="redis://127.0.0.1:6379/13", help="flushed first")
    p.add_argument("--drain-timeout", type=float, default=900.0, help="seconds to wait for pending records")
    p.add_argument(
        "--chrt",
        type=int,
        default=0,
        help="run the gateway process at SCHED_FIFO with this priority (root): on a shared machine it then has its "
        "core as if alone, and its idle-priority recorder gets only what it leaves, as on a dedicated core",
    )
    p.add_argument("--json-out", type=Path)
    return p.parse_args(argv)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def run(args: argparse.Namespace) -> dict:
    pin_self(_bench.CLIENT_CPU)
    if _wrk.available() is None:
        raise SystemExit("soak.py needs wrk (apt-get install wrk)")
    report: dict = {"benchmark": "soak", "command": " ".join(sys.argv), "started_at": dt.datetime.now(dt.UTC)}
    report["conditions"] = {"machine": _conditions.machine(), "versions": _conditions.versions()}
    with tempfile.TemporaryDirectory(prefix="interlock-soak-") as tmp, Processes(Path(tmp)) as procs:
        bench = _bench.Bench(argparse.Namespace(no_wrk=False, profile=False), procs, None)
        sink_port = bench.start_sink()
        if args.upstream:
            upstream, served, kind = args.upstream.removesuffix("/").removesuffix("/v1"), "mock", "openai"
        else:
            emulator = EmulatorServer(port=0, ttft_ms=0, tpot_ms=0, output_tokens=16, served_model_names=[_bench.MODEL])
            procs.adopt(emulator)
            emulator.start()
            upstream, served, kind = emulator.url, _bench.MODEL, "vllm"
        extra, auth = _targets.limits_settings(args.redis, _bench.MODEL)
        extra["models"] = [
            {
                "name": _bench.MODEL,
                "pricing": {"input_per_token": 1e-7, "output_per_token": 4e-7},
                "deployments": [{"name": "upstream", "kind": kind, "url": upstream, "model": served}],
            }
        ]
        database_url = f"sqlite:///{tmp}/records.db"
        port = free_port()
        gateway = _targets.start_gateway(
            procs,
            "gateway",
            cpu=_bench.GATEWAY_CPU,
            port=port,
            upstream_url=upstream,
            model=_bench.MODEL,
            database_url=database_url,
            otlp_endpoint=f"http://127.0.0.1:{sink_port}/v1/traces",
            extra=extra,
        )
        recorder = _conditions.find_descendant("gateway.recorder")
        if args.chrt:  # every thread of the gateway; the recorder keeps its own (idle) policy
            subprocess.run(["chrt", "-a", "-f", "-p", str(args.chrt), str(gateway.pid)], check=True)
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        payload = orjson.dumps(
            {"model": _bench.MODEL, "messages": [{"role": "user", "content": _bench.PROMPT}], "max_tokens": 16}
        )
        slices, served, started = [], 0, time.monotonic()
        report["rss_ready_mb"] = {"gateway": rss_mb(gateway.pid), "recorder": rss_mb(recorder) if recorder else None}
        while served < args.requests and time.monotonic() - started < args.minutes * 60:
            result = _wrk.run(url, payload, args.connections, args.slice, procs.log_dir, headers=auth)
            served += result["requests"]
            sample = {
                "at_s": round(time.monotonic() - started, 1),
                "requests": served,
                "requests_per_s": result["requests_per_s"],
                "errors": result["non_2xx"] + result["socket_errors"],
                "rss_mb": {"gateway": rss_mb(gateway.pid), "recorder": rss_mb(recorder) if recorder else None},
                "metrics": _bench._scrape(port, METRICS),
            }
            slices.append(sample)
            print(json.dumps(sample), flush=True)
        deadline = time.monotonic() + args.drain_timeout
        while time.monotonic() < deadline:
            pending = _bench._scrape(port, ("interlock_records_pending",)).get("interlock_records_pending")
            if not pending:
                break
            time.sleep(2)
        report["drained_after_s"] = round(time.monotonic() - started - slices[-1]["at_s"], 1) if slices else 0
        report["rss_drained_mb"] = {"gateway": rss_mb(gateway.pid), "recorder": rss_mb(recorder) if recorder else None}
        report["final_metrics"] = _bench._scrape(port, METRICS)
        report["sink"] = _bench._get_json(sink_port, "/stats")
        procs.stop(gateway)
        report["records_written"] = _targets.count_records(database_url)
    report["requests"] = served
    report["slices"] = slices
    report["summary"] = summary(slices, report)
    return report


def summary(slices: list[dict], report: dict) -> dict:
    out: dict = {"requests": report["requests"], "records_written": report["records_written"]}
    if not slices:
        return out
    half = slices[len(slices) // 2]
    for proc in ("gateway", "recorder"):
        series = [s["rss_mb"][proc] for s in slices if s["rss_mb"][proc] is not None]
        if series:
            out[f"{proc}_rss_mb"] = {
                "ready": report["rss_ready_mb"][proc],
                "first_slice": series[0],
                "peak": max(series),
                "last_slice": series[-1],
                "drained": report["rss_drained_mb"][proc],
                "second_half_growth": round(series[-1] - half["rss_mb"][proc], 1),
            }
    last = report["final_metrics"]
    spans = report["sink"].get("spans", 0)
    out["spans_exported"] = spans
    out["traces_shed"] = last.get("interlock_traces_shed")
    out["spans_dropped"] = last.get("interlock_spans_dropped")
    out["requests_per_s_mean"] = round(sum(s["requests_per_s"] for s in slices) / len(slices), 1)
    out["errors"] = sum(s["errors"] for s in slices)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    text = json.dumps(report, indent=2, default=str)
    print(json.dumps(report["summary"], indent=2))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(text)
    # Requests still in flight when a wrk slice ends are served and recorded too: at least one record each.
    with contextlib.suppress(Exception):
        return 0 if report["summary"]["records_written"] >= report["requests"] else 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
