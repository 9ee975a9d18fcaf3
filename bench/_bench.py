"""The benchmark's measuring side: one ``Bench`` per run starts the targets and measures each the same way.

``measure`` is the whole protocol for one target: a warm-up, latency at concurrency 1 and 4, streaming time
to first token at concurrency 1, and throughput at saturation; every phase also records how busy the machine
was and how much CPU the server under test used per request.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import socket
import sys
import threading
import time
from pathlib import Path

import _client
import _conditions
import _profile
import _targets
import _wrk
import orjson
from _processes import Processes, StartupError, free_port, pinned, wait_http

GATEWAY_CPU, CLIENT_CPU = 0, 1
MODEL = "bench-model"
PROMPT = "Say hello to the benchmark."


def body(args: argparse.Namespace, stream: bool) -> bytes:
    """The request every target gets: a short chat, ``max_tokens`` the emulator's fixed output length."""
    request = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": args.output_tokens}
    if stream:
        request["stream"] = True
    return orjson.dumps(request)


class Bench:
    """One run: the processes, the settings, and the figures as they are measured."""

    def __init__(self, args: argparse.Namespace, procs: Processes, runner: asyncio.Runner) -> None:
        self.args = args
        self.procs = procs
        self.runner = runner
        self.work = procs.log_dir
        self.wrk = None if args.no_wrk else _wrk.available()
        self.notes: list[str] = []
        self.facts: dict = {}
        self.profiled = False
        #: Processes of the target measured apart (its recorder), while an Interlock target is measured.
        self.parts: dict[str, int] = {}
        if self.wrk is None:
            why = "--no-wrk given" if args.no_wrk else "wrk not found (apt-get install wrk)"
            self.notes.append(f"{why}: saturation measured with the Python load generator, which saturates itself")

    def phase(self, name: str, fn, pid: int | None) -> dict:
        with _conditions.CpuMeter(pid, self.parts) as meter:
            result = fn()
        result["machine"] = meter.result(result.get("ok", result.get("requests", 0)))
        print(f"  {name}: {_brief(result)}", file=sys.stderr, flush=True)
        return result

    def measure(self, url: str, pid: int | None, auth: dict[str, str] | None = None) -> dict:
        """Every figure for one target; ``pid`` is the server's process, whose CPU use is counted too.
        ``auth``: extra request headers (an API key for the limits variant)."""
        a, run = self.args, self.runner.run
        plain, stream = body(a, False), body(a, True)
        endpoint = url + "/v1/chat/completions"
        limit = a.phase_timeout
        h = {**_client.JSON_HEADERS, **(auth or {})}
        run(_client.latency(endpoint, plain, 4, a.warmup, limit, h))
        out = {
            "c1": self.phase("c=1", lambda: run(_client.latency(endpoint, plain, 1, a.requests, limit, h)), pid),
            "c4": self.phase("c=4", lambda: run(_client.latency(endpoint, plain, 4, a.requests, limit, h)), pid),
        }
        run(_client.streaming(endpoint, stream, 1, max(10, a.warmup // 4), limit, h))
        out["stream_c1"] = self.phase(
            "stream c=1", lambda: run(_client.streaming(endpoint, stream, 1, a.requests, limit, h)), pid
        )
        out["saturation"] = self.phase("saturation", lambda: self.saturate(endpoint, plain, auth), pid)
        return out

    def saturate(
        self, endpoint: str, payload: bytes, auth: dict[str, str] | None = None, seconds: float | None = None
    ) -> dict:
        """wrk (or our client) at ``connections`` for ``seconds`` (default ``--duration``); with ``seconds`` it may
        run in a thread of its own (the profiled run), so it then gets an event loop of its own too."""
        a = self.args
        run = self.runner.run if seconds is None else asyncio.run
        seconds = seconds or a.duration
        if self.wrk is not None:
            return _wrk.run(endpoint, payload, a.connections, seconds, self.work, headers=auth)
        h = {**_client.JSON_HEADERS, **(auth or {})}
        return run(_client.saturate(endpoint, payload, a.connections, seconds, h))

    # -- the targets -----------------------------------------------------------------------------------------

    def start_sink(self) -> int:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(1024)
        port = sock.getsockname()[1]
        script = Path(__file__).with_name("_trace_sink.py")
        cmd = pinned([sys.executable, str(script), "--fd", str(sock.fileno())], CLIENT_CPU)
        child = self.procs.start("trace-sink", cmd, pass_fds=(sock.fileno(),))
        sock.close()
        wait_http(child, "127.0.0.1", port, "/health", 30)
        return port

    def interlock(
        self,
        name: str,
        upstream: str,
        database_url: str,
        sink_port: int,
        extra: dict | None = None,
        auth: dict[str, str] | None = None,
    ) -> dict:
        port = free_port()
        child = _targets.start_gateway(
            self.procs,
            name,
            cpu=GATEWAY_CPU,
            port=port,
            upstream_url=upstream,
            model=MODEL,
            database_url=database_url,
            otlp_endpoint=f"http://127.0.0.1:{sink_port}/v1/traces",
            extra=extra,
        )
        url = f"http://127.0.0.1:{port}"
        records_before = _targets.count_records(database_url) or 0
        if "process_affinity" not in self.facts:
            self.facts["process_affinity"] = _conditions.affinities()
        spans_before = _get_json(sink_port, "/stats")["spans"]
        recorder = _conditions.find_descendant("gateway.recorder")
        self.parts = {"recorder": recorder} if recorder else {}
        try:
            result = self.measure(url, child.pid, auth)
            result["saturation"]["deferred"] = self.deferred(port, child.pid, sink_port, result["saturation"])
        finally:
            self.parts = {}
        if self.args.profile and name == self.args.profile_target and not self.profiled:
            self.profiled = True
            result["profile"] = self.profile(child.pid, url, auth)
        result["gateway_metrics"] = _scrape(
            port, ("interlock_records_dropped", "interlock_records_pending", "interlock_spans_dropped")
        )
        self.procs.stop(child)  # a clean shutdown flushes the last records and spans
        result["records_written"] = (_targets.count_records(database_url) or 0) - records_before
        result["spans_exported"] = _get_json(sink_port, "/stats")["spans"] - spans_before
        return result

    def deferred(self, port: int, pid: int, sink_port: int, saturation: dict) -> dict:
        """The bookkeeping a saturated gateway put off: its recorder runs at idle priority, so under full load
        records wait in the journal and spans in a buffer until the core has time. Waits (bounded) until the
        records are written and the spans stop arriving at the sink, and counts the CPU that took per request
        of the saturation run: part of the honest cost of a request."""
        pending = _scrape(port, ("interlock_records_pending",)).get("interlock_records_pending", 0.0)
        started = time.monotonic()
        with _conditions.CpuMeter(pid, self.parts) as meter:
            left = pending
            while left and time.monotonic() - started < self.args.phase_timeout:
                time.sleep(0.1)
                left = _scrape(port, ("interlock_records_pending",)).get("interlock_records_pending", 0.0)
            spans, last = _get_json(sink_port, "/stats")["spans"], -1
            while spans != last and time.monotonic() - started < self.args.phase_timeout:
                time.sleep(1.2)  # the recorder posts spans once a second
                spans, last = _get_json(sink_port, "/stats")["spans"], spans
        requests = saturation.get("requests") or 0
        out = {"records_pending_at_end": int(pending), "drain_s": round(time.monotonic() - started, 2)}
        out["records_still_pending"] = int(left)
        used = meter.result(requests)
        cost = used.get("target_cpu_us_per_request")
        if pending and cost is not None:
            out["cpu_us_per_request"] = cost
            if "recorder_cpu_us_per_request" in used:
                # The recorder's own CPU per record it wrote meanwhile (spans included): the figure to compare
                # between versions, whatever share of the backlog it had managed during the saturation run.
                drained = pending - left
                rec = used["recorder_cpu_us_per_request"] * requests
                out["recorder_cpu_us_per_record"] = round(rec / drained, 1) if drained else None
                out["gateway_idle_cpu_us_per_request"] = used["rest_cpu_us_per_request"]
            spent = saturation["machine"].get("target_cpu_us_per_request")
            if spent:
                # One core doing both the serving and the deferred writing; never above what was measured
                # (a gateway waiting on Redis was not CPU-bound, and spare CPU is not throughput).
                rate = min(1e6 / (spent + cost), saturation["requests_per_s"])
                out["sustainable_requests_per_s"] = round(rate, 1)
        return out

    def thin_proxy(self, upstream: str) -> dict:
        port = free_port()
        child = _targets.start_thin_proxy(self.procs, cpu=GATEWAY_CPU, port=port, upstream_url=upstream)
        try:
            return self.measure(f"http://127.0.0.1:{port}", child.pid)
        finally:
            self.procs.stop(child)

    def litellm(self, upstream: str) -> dict | None:
        command = _targets.litellm_command(self.args.litellm_bin)
        missing = _targets.litellm_missing(command)
        if missing is not None:
            self.notes.append(
                f"LiteLLM not measured: {missing}. Install it in a venv of its own "
                "(python3 -m venv /tmp/litellm && /tmp/litellm/bin/pip install 'litellm[proxy]') "
                "and pass --litellm /tmp/litellm/bin/litellm"
            )
            return None
        self.facts["litellm_version"] = _targets.litellm_version(command)
        port = free_port()
        try:
            child = _targets.start_litellm(
                self.procs, command, cpu=GATEWAY_CPU, port=port, upstream_url=upstream, model=MODEL
            )
        except StartupError as exc:
            self.notes.append(f"LiteLLM not measured: it did not start: {str(exc)[-1500:]}")
            return None
        try:
            return self.measure(f"http://127.0.0.1:{port}", child.pid)
        finally:
            self.procs.stop(child)

    def profile(self, pid: int, url: str, auth: dict[str, str] | None = None) -> dict:
        exe = _profile.py_spy()
        if exe is None:
            self.notes.append("no profile: py-spy not installed (.venv/bin/pip install py-spy)")
            return {}
        self.args.profile_out.mkdir(parents=True, exist_ok=True)
        raw = self.args.profile_out / "gateway-profile.txt"
        seconds = self.args.profile_seconds or self.args.duration
        loaded: dict = {}
        endpoint, plain = url + "/v1/chat/completions", body(self.args, False)
        # wrk outlasts the sampling window on both ends so every sample is of the saturated gateway.
        load = threading.Thread(target=lambda: loaded.update(self.saturate(endpoint, plain, auth, seconds + 3)))
        load.start()
        time.sleep(1.0)
        spy = _profile.record(pid, seconds, raw, rate=self.args.profile_rate)
        _, err = spy.communicate(timeout=seconds + 60)
        load.join(seconds + 60)
        if not raw.exists():
            self.notes.append(f"py-spy wrote no profile: {err.decode(errors='replace')[-300:]}")
            return {}
        summary = _profile.summarize(raw)
        summary["mode"] = _profile.MODE.replace("--rate 100", f"--rate {self.args.profile_rate}")
        return {"collapsed_stacks": str(raw), "load_while_sampled": loaded, **summary}


def _get_json(port: int, path: str) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        return orjson.loads(conn.getresponse().read())
    finally:
        conn.close()


def _scrape(port: int, names: tuple[str, ...]) -> dict[str, float]:
    out: dict[str, float] = {}
    with contextlib.suppress(OSError, http.client.HTTPException):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/metrics")
        for line in conn.getresponse().read().decode().splitlines():
            name, _, value = line.partition(" ")
            if name in names:
                out[name] = float(value)
        conn.close()
    return out


def _brief(result: dict) -> str:
    lat = result.get("latency_ms") or result.get("ttft_ms") or {}
    rps = result.get("requests_per_s")
    machine = result.get("machine", {})
    text = f"p50 {lat.get('p50')} ms, p99 {lat.get('p99')} ms" + (f", {rps}/s" if rps else "")
    if "target_cpu_us_per_request" in machine:
        text += f", server CPU {machine['target_cpu_us_per_request']} us/request"
    return text + f", other programs {machine.get('foreign_cores')} cores"
