"""What the built-in trace store costs: CPU of the gateway (per request) and of its recorder process (per span
stored or judged), with the store off and on, on ``interlock up``'s embedded settings (SQLite, one model on the
vLLM emulator), requests one after another over HTTP.

The gateway runs in this process (a uvicorn thread, as the e2e tests run it): its CPU is the CPU of every thread
but the client's (``psutil`` thread times). The recorder is its child process, at idle priority. CPU time, not
wall time: on a shared machine other programs inflate wall time much more than CPU time. Prints ``uptime``.

    PYTHONPATH=$PWD .venv/bin/python bench/trace_store_cost.py --requests 2000
    PYTHONPATH=$PWD .venv/bin/python bench/trace_store_cost.py --requests 20000 --in-process
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time

import httpx
import psutil

from interlock.commands.up import MODEL_NAME, embedded_settings
from interlock.emulator import EmulatorServer
from tests.support.gateway import running_gateway


def gateway_cpu(client_thread: int) -> float:
    """CPU seconds of this process's threads other than the client's (the gateway's event loop and helpers)."""
    return sum(t.user_time + t.system_time for t in psutil.Process().threads() if t.id != client_thread)


def recorder_cpu() -> float:
    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            if "gateway.recorder" in " ".join(child.cmdline()):
                t = child.cpu_times()
                total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def stored_spans(db: str) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(db)
    try:
        with engine.connect() as c:
            return c.execute(sa.text("SELECT count(*) FROM spans")).scalar_one()
    finally:
        engine.dispose()


def run(worker_url: str, requests: int, store: dict | None) -> dict:
    with tempfile.TemporaryDirectory() as d:
        db = f"sqlite:///{d}/bench.db"
        settings = embedded_settings(worker_url, 0, db)
        settings.pop("server")
        if store is not None:
            settings.update(store)
        me = threading.get_native_id()
        body = {"model": MODEL_NAME, "max_tokens": 8, "messages": [{"role": "user", "content": "Hi!"}]}
        with running_gateway(**settings) as (url, _), httpx.Client(base_url=url) as c:
            for _ in range(50):  # warm-up
                c.post("/v1/chat/completions", json=body).raise_for_status()
            time.sleep(2)
            g0, r0 = gateway_cpu(me), recorder_cpu()
            for _ in range(requests):
                c.post("/v1/chat/completions", json=body).raise_for_status()
            time.sleep(3)  # the recorder catches up (idle priority) before its CPU is read
            g1, r1 = gateway_cpu(me), recorder_cpu()
            spans = stored_spans(db) if store else 0
        return {"gateway_us": (g1 - g0) / requests * 1e6, "recorder_us": (r1 - r0) / requests * 1e6, "spans": spans}


def store_cpu_per_span(traces: int, keep_ratio: float) -> tuple[float, int]:
    """CPU µs per span of the recorder's trace store alone (``SpanStore.tick``: parse, judge, write to SQLite),
    fed blocks of 4-span traces encoded by the gateway's own ``Tracing`` (request, upstream try, two steps)."""
    from gateway.db.engine import make_engine, migrate
    from gateway.recorder.spans_store import SpanStore
    from observability import CLIENT, SERVER, Tracing, request_attributes
    from observability.tracing import step_span

    blocks: list[bytes] = []
    tracing = Tracing("bench")
    tracing.send_to(blocks.append)
    body = {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "Hi!"}]}
    for i in range(traces):
        root = tracing.start_span(
            "chat m", SERVER, {**request_attributes("chat", body), "interlock.request_id": str(i)}
        )
        for step in ("authenticate", "resolve_model"):
            step_span(root, f"interlock.step {step}").end()
        tracing.start_span("chat m", CLIENT, {"interlock.deployment": "d0"}, root).end()
        root.set_attribute("http.response.status_code", 200)
        root.end()
    with tempfile.TemporaryDirectory() as d:
        url = f"sqlite:///{d}/spans.db"
        migrate(url)
        store = SpanStore(make_engine(url), {"keep_ratio": keep_ratio})
        started = time.process_time()
        for i in range(0, len(blocks), 256):  # the recorder reads the pipe in blocks of many spans
            store.add_block(b",".join(blocks[i : i + 256]))
            store.tick()
        store.close()
        return (time.process_time() - started) / len(blocks) * 1e6, store.stored


def gateway_span_cpu(requests: int, store: bool) -> float:
    """CPU µs per request of the gateway's spans alone: made and discarded (store off, no OTLP endpoint), or with
    the two step spans the store adds and all four encoded for the recorder (``Tracing.send_to``)."""
    from observability import CLIENT, SERVER, Tracing, request_attributes
    from observability.tracing import step_span

    tracing = Tracing("bench")
    if store:
        shipped: list[bytes] = []
        tracing.send_to(lambda b: shipped.append(b) if len(shipped) < 1000 else shipped.clear())
    body = {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "Hi!"}]}
    started = time.process_time()
    for _ in range(requests):
        attrs = request_attributes("chat", body)
        if store:
            attrs["interlock.request_id"] = "x"
        root = tracing.start_span("chat m", SERVER, attrs)
        if store:
            for step in ("authenticate", "resolve_model"):
                step_span(root, f"interlock.step {step}").end()
        tracing.start_span("chat m", CLIENT, {"interlock.deployment": "d0"}, root).end()
        root.set_attribute("http.response.status_code", 200)
        root.end()
    return (time.process_time() - started) / requests * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--in-process", action="store_true", help="only the in-process figures (spans and the store)")
    args = p.parse_args()
    for _ in range(args.rounds):
        off, on = gateway_span_cpu(50_000, False), gateway_span_cpu(50_000, True)
        print(
            f"gateway spans of a request: {off:.1f} µs CPU with the store off, {on:.1f} µs on "
            f"(load {os.getloadavg()[0]:.1f})"
        )
    for keep in (0.1, 1.0):
        cpu, stored = store_cpu_per_span(args.requests, keep)
        print(
            f"trace store alone, keep_ratio {keep}: {cpu:.1f} µs CPU per span received ({stored} of "
            f"{4 * args.requests} stored; load {os.getloadavg()[0]:.1f})"
        )
    if args.in_process:
        return
    configs = {
        "store off": None,
        "store on, keep 10%": {"trace_store": {"enabled": True, "keep_ratio": 0.1}},
        "store on, keep all": {"trace_store": {"enabled": True, "keep_ratio": 1.0}},
    }
    print(f"uptime: {os.getloadavg()}")
    with EmulatorServer(port=0, served_model_names=[MODEL_NAME], output_tokens=8) as worker:
        for _ in range(args.rounds):
            for name, store in configs.items():
                r = run(worker.url, args.requests, store)
                print(
                    f"{name:>20}: gateway {r['gateway_us']:.0f} µs CPU/request, recorder {r['recorder_us']:.0f} "
                    f"µs CPU/request, spans stored {r['spans']} of {args.requests + 50} requests "
                    f"(load {os.getloadavg()[0]:.1f})"
                )


if __name__ == "__main__":
    main()
