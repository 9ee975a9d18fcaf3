"""What Interlock adds on top of its upstream: direct-to-emulator against through-the-gateway, in one run.

    .venv/bin/python bench/gateway_overhead.py [--duration 10] [--requests 2000] [--litellm]
                                               [--postgres [URL]] [--json-out FILE] [--profile]

Starts a vLLM emulator (no delays, short fixed output), a local OTLP trace sink and one gateway worker with
tracing and request records on, then measures each target the same way: latency at concurrency 1 and 4,
streaming time to first token, and throughput at saturation (wrk, 32 connections). The gateway (and LiteLLM,
with ``--litellm``) is pinned to core 0; the emulator, the sink, the clients and wrk share core 1. Prints one
JSON document (see bench/README.md for every figure). Every process it starts is stopped on the way out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

import _conditions
import _report
import _targets
import _wrk
import orjson
import uvloop
from _bench import CLIENT_CPU, GATEWAY_CPU, MODEL, Bench, body
from _processes import Processes, StartupError, pin_self

from interlock.emulator import EmulatorServer

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=10.0, help="seconds of each saturation run (default 10)")
    p.add_argument("--requests", type=int, default=2000, help="requests per latency point (default 2000)")
    p.add_argument("--warmup", type=int, default=300, help="requests before each target's latency points")
    p.add_argument("--connections", type=int, default=32, help="connections at saturation (default 32)")
    p.add_argument("--output-tokens", type=int, default=16, help="tokens in every emulated answer")
    p.add_argument(
        "--litellm",
        nargs="?",
        const="",
        metavar="LITELLM_BIN",
        help="also measure a LiteLLM proxy (one worker); LITELLM_BIN: its command in a venv of its own "
        "(default: the litellm beside this interpreter, which needs the proxy extra)",
    )
    p.add_argument(
        "--no-thin-proxy", action="store_true", help="skip the calibration point (a featureless raw-ASGI proxy)"
    )
    p.add_argument(
        "--postgres", nargs="?", const=DEFAULT_POSTGRES, metavar="URL", help="also measure with records in PostgreSQL"
    )
    p.add_argument(
        "--limits",
        nargs="?",
        const="redis://127.0.0.1:6379/14",
        metavar="REDIS_URL",
        help="also measure with keys required and a key with limits and a budget, enforced in Redis "
        "(default redis://127.0.0.1:6379/14, flushed first)",
    )
    p.add_argument("--profile", action="store_true", help="py-spy the gateway in an extra saturation run")
    p.add_argument("--profile-seconds", type=float, help="length of the profiled run (default: --duration)")
    p.add_argument("--profile-rate", type=int, default=100, help="py-spy samples per second (default 100)")
    p.add_argument(
        "--profile-target",
        default="interlock_sqlite",
        choices=("interlock_sqlite", "interlock_limits", "interlock_postgres"),
        help="the gateway target profiled (default interlock_sqlite)",
    )
    p.add_argument("--profile-out", type=Path, default=Path(__file__).parent / "results", help="profile folder")
    p.add_argument("--phase-timeout", type=float, default=120.0, help="upper bound in seconds of one phase")
    p.add_argument("--no-wrk", action="store_true", help="use the Python load generator even if wrk exists")
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="first wait up to this long for other programs to use under a quarter of a core",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure every target this many times and keep, per phase, the round least disturbed by other "
        "programs (for shared machines)",
    )
    p.add_argument("--json-out", type=Path, help="also write the JSON document here")
    return p.parse_args(argv)


def conditions(args: argparse.Namespace, bench: Bench, emulator: EmulatorServer) -> dict:
    opts = emulator.options
    return {
        "machine": _conditions.machine(),
        "pinning": {
            "gateway": GATEWAY_CPU,
            "litellm": GATEWAY_CPU,
            "thin_proxy": GATEWAY_CPU,
            "emulator": CLIENT_CPU,
            "trace_sink": CLIENT_CPU,
            "latency_client": CLIENT_CPU,
            "saturation_client": CLIENT_CPU,
        },
        "gateway": {
            "workers": 1,
            "server": "uvicorn + uvloop + httptools (interlock serve)",
            "tracing": "on: OTLP/HTTP batch export to a local sink",
            "records": "on: request_records in SQLite (and PostgreSQL with --postgres)",
            "redis_limits": "off",
            "access_keys": "off (anonymous calls)",
        },
        "emulator": {
            "ttft_ms": opts.ttft_ms,
            "tpot_ms": opts.tpot_ms,
            "output_tokens": opts.output_tokens,
            "server": "interlock emulator (uvicorn + uvloop + httptools)",
        },
        "load": {
            "latency_client": "Python aiohttp, keep-alive, GC paused during a run",
            "requests_per_latency_point": args.requests,
            "warmup_requests": args.warmup,
            "saturation_client": (bench.wrk and f"{_wrk.version()} -t1 -c{args.connections}") or "python-aiohttp",
            "saturation_connections": args.connections,
            "saturation_duration_s": args.duration,
            "request": orjson.loads(body(args, False)),
        },
        "versions": {**_conditions.versions(), "wrk": _wrk.version()},
    }


def run(args: argparse.Namespace) -> dict:
    pin_self(CLIENT_CPU)  # the client; every child started without taskset inherits this core
    quiet = _wait_quiet(args.wait_quiet) if args.wait_quiet > 0 else None
    started = dt.datetime.now(dt.UTC)
    with (
        tempfile.TemporaryDirectory(prefix="interlock-bench-") as tmp,
        Processes(Path(tmp)) as procs,
        asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
        contextlib.ExitStack() as stack,
    ):
        bench = Bench(args, procs, runner)
        sink_port = bench.start_sink()
        emulator = EmulatorServer(
            port=0, ttft_ms=0, tpot_ms=0, output_tokens=args.output_tokens, served_model_names=[MODEL]
        )
        procs.adopt(emulator)
        emulator.start()
        report = {"benchmark": "gateway_overhead", "command": " ".join(sys.argv), "started_at": started.isoformat()}
        report["conditions"] = conditions(args, bench, emulator)
        if quiet is not None:
            report["conditions"]["machine"]["wait_quiet"] = quiet
        upstream = emulator.url
        emulator_pid = _conditions.find_descendant("interlock.emulator")
        targets = {"direct": ("direct (client -> emulator)", lambda: bench.measure(upstream, emulator_pid))}
        if not args.no_thin_proxy:
            targets["thin_proxy"] = ("thin proxy (raw ASGI + aiohttp + orjson)", lambda: bench.thin_proxy(upstream))
        sqlite_url = f"sqlite:///{tmp}/records.db"
        targets["interlock_sqlite"] = (
            "interlock, records in SQLite",
            lambda: bench.interlock("interlock_sqlite", upstream, sqlite_url, sink_port),
        )
        if args.postgres:
            why = _targets.postgres_reachable(args.postgres)
            if why is None:
                pg_url = stack.enter_context(_targets.throwaway_database(args.postgres))
                targets["interlock_postgres"] = (
                    "interlock, records in PostgreSQL",
                    lambda: bench.interlock("interlock_postgres", upstream, pg_url, sink_port),
                )
            else:
                bench.notes.append(f"PostgreSQL variant not measured: {args.postgres} unreachable ({why})")
        if args.limits:
            limits_db = f"sqlite:///{tmp}/records-limits.db"
            extra, auth = _targets.limits_settings(args.limits, MODEL)
            targets["interlock_limits"] = (
                "interlock, keys + Redis limits + budget, records in SQLite",
                lambda: bench.interlock("interlock_limits", upstream, limits_db, sink_port, extra, auth),
            )
        if args.litellm is not None:
            targets["litellm"] = ("litellm proxy", lambda: bench.litellm(upstream))
        rounds: dict[str, list[dict]] = {name: [] for name in targets}
        for index in range(max(1, args.rounds)):
            for name, (title, measure) in targets.items():
                _say(f"{title}" + (f", round {index + 1}/{args.rounds}" if args.rounds > 1 else ""))
                result = measure()
                if result is not None:
                    rounds[name].append(result)
        report["conditions"]["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    results = {name: _report.merge_rounds(runs) for name, runs in rounds.items() if runs}
    report.update(_report.build(results))
    report["notes"] = bench.notes
    report["conditions"].update(bench.facts)
    report["results"] = results
    report["finished_at"] = dt.datetime.now(dt.UTC).isoformat()
    return report


def _wait_quiet(limit: float) -> dict:
    """Sample the machine in 2 s windows until other programs use under a quarter of a core (bounded)."""
    deadline = time.monotonic() + limit
    waited = time.monotonic()
    foreign = None
    while time.monotonic() < deadline:
        with _conditions.CpuMeter() as meter:
            time.sleep(2.0)
        foreign = meter.result()["foreign_cores"]
        if foreign < _report.NOISY_FOREIGN_CORES:
            break
        _say(f"waiting for a quiet machine: other programs use {foreign} cores")
    return {"waited_s": round(time.monotonic() - waited, 1), "foreign_cores_at_start": foreign}


def _say(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.litellm_bin = args.litellm or None
    try:
        report = run(args)
    except StartupError as exc:
        print(f"[bench] a process did not start: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("[bench] interrupted; every process started was stopped", file=sys.stderr)
        return 130
    text = orjson.dumps(report, option=orjson.OPT_INDENT_2).decode()
    print(text)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(text + "\n")
    return 2 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
