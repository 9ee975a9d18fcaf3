"""Where does a p99 at concurrency 1 come from? A closed-loop client that keeps every request's time, and who had
the gateway's core while the gateway waited for it.

    .venv/bin/python bench/tail_probe.py http://127.0.0.1:4200 --key sk-... --seconds 15 \
        --perf-cpu 0 --gateway-pid 1234 --recorder-pid 1235

Sends one chat request at a time for ``--seconds`` (HTTP/1.1 keep-alive, a raw socket: the client's own cost is a
few µs) and prints percentiles, how many requests took over 2 and 5 ms, and the slow ones grouped into clusters
(requests over ``--slow`` ms less than 0.2 s apart): one long stall, a burst of slow requests, and a period are
different causes. With ``--perf-cpu`` it records ``perf sched`` on that core meanwhile (root) and sums, over every
wake-up of the gateway's main thread that waited for the CPU, which tasks ran in that time: the recorder, kernel
threads (writeback, jbd2, ksoftirqd), or other programs. Pin it away from the gateway's core (``taskset -c 1``).
"""

from __future__ import annotations

import argparse
import collections
import json
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("url", help="the gateway's base URL")
    p.add_argument("--key", default="sk-unused")
    p.add_argument("--model", default="mock")
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--slow", type=float, default=3.0, help="ms above which a request counts as slow")
    p.add_argument("--perf-cpu", type=int, help="record perf sched on this core meanwhile")
    p.add_argument("--gateway-pid", type=int)
    p.add_argument("--recorder-pid", type=int)
    p.add_argument("--min-wait", type=float, default=0.2, help="ms of waiting for the CPU worth blaming")
    return p.parse_args(argv)


def request_bytes(url: str, key: str, model: str) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    body = json.dumps(
        {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": "Say hello. " * 20}]}
    ).encode()
    head = (
        f"POST {parts.path.rstrip('/').removesuffix('/v1')}/v1/chat/completions HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return parts.hostname or "127.0.0.1", parts.port or 80, head.encode() + body


def drive(host: str, port: int, request: bytes, seconds: float) -> list[tuple[float, float]]:
    """``(start s, latency ms)`` of every request, one at a time over one connection."""
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    out, buf = [], b""
    t0 = time.perf_counter()
    while (start := time.perf_counter()) - t0 < seconds:
        sock.sendall(request)
        while True:
            total = response_length(buf)
            if total is not None:
                if not buf.startswith(b"HTTP/1.1 200"):
                    raise SystemExit(f"not a 200: {buf[:80]!r}")
                buf = buf[total:]
                break
            chunk = sock.recv(65536)
            if not chunk:
                raise SystemExit("the server closed the connection")
            buf += chunk
        out.append((start - t0, (time.perf_counter() - start) * 1000))
    sock.close()
    return out


def response_length(buf: bytes) -> int | None:
    """Bytes of the HTTP/1.1 response at the start of ``buf`` once it is complete, else ``None``: a body of
    ``Content-Length`` bytes, or chunked (as the thin proxies answer)."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = buf[:end].lower()
    at = head.find(b"\r\ncontent-length:")
    if at >= 0:
        total = end + 4 + int(head[at + 17 :].split(b"\r\n", 1)[0])
        return total if len(buf) >= total else None
    if b"\r\ntransfer-encoding: chunked" not in head:
        raise SystemExit(f"a response with neither Content-Length nor chunks: {head[:200]!r}")
    at = end + 4
    while (line_end := buf.find(b"\r\n", at)) >= 0:
        size = int(buf[at:line_end].split(b";", 1)[0], 16)
        at = line_end + 2 + size + 2  # the chunk and its CRLF
        if size == 0:
            return at if len(buf) >= at else None  # (no trailers: none of the targets sends them)
        if at > len(buf):
            return None
    return None


def report(samples: list[tuple[float, float]], slow: float) -> dict:
    lat = sorted(ms for _, ms in samples)
    pick = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))], 3)  # noqa: E731
    clusters: list[list[tuple[float, float]]] = []
    for t, ms in samples:
        if ms <= slow:
            continue
        if clusters and t - clusters[-1][-1][0] < 0.2:
            clusters[-1].append((t, ms))
        else:
            clusters.append([(t, ms)])
    return {
        "requests": len(lat),
        "p50_ms": pick(0.5),
        "p99_ms": pick(0.99),
        "p999_ms": pick(0.999),
        "max_ms": round(lat[-1], 3),
        "over_2ms": sum(ms > 2 for ms in lat),
        "over_5ms": sum(ms > 5 for ms in lat),
        "slow_clusters": [
            {"at_s": round(c[0][0], 2), "requests": len(c), "worst_ms": round(max(ms for _, ms in c), 1)}
            for c in clusters
        ],
    }


def blame(timehist: str, gateway: int, recorder: int | None, min_wait: float) -> dict:
    """From ``perf sched timehist`` lines (time, cpu, task, wait, sch delay, run time): for each time the gateway's
    main thread waited ``min_wait`` ms or more to run after its wake-up, which tasks ran meanwhile (ms)."""
    rows = []
    for line in timehist.splitlines():
        p = line.split()
        if len(p) < 6 or not p[0][:1].isdigit():
            continue
        try:
            rows.append((float(p[0]), p[2], float(p[-2]), float(p[-1])))
        except ValueError:
            continue
    who: collections.Counter[str] = collections.Counter()
    waits, waited = 0, 0.0
    for i, (t, task, delay, run) in enumerate(rows):
        if not task.endswith(f"[{gateway}]") or delay < min_wait:
            continue
        waits, waited = waits + 1, waited + delay
        start = t - run / 1000
        for t2, task2, _, run2 in rows[max(0, i - 500) : i]:
            overlap = min(t2, start) - max(t2 - run2 / 1000, start - delay / 1000)
            if overlap > 0:
                pid = task2.rsplit("[", 1)[-1].rstrip("]").split("/")[-1]
                name = "the recorder" if recorder and pid == str(recorder) else task2.rsplit("[", 1)[0]
                who[name] += overlap * 1000
    ran = {name: round(ms, 3) for name, ms in who.most_common(15)}
    return {"waits": waits, "waited_ms": round(waited, 1), "who_ran_ms": ran}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    host, port, request = request_bytes(args.url, args.key, args.model)
    perf = None
    with tempfile.TemporaryDirectory(prefix="tail-probe-") as tmp:
        data = Path(tmp) / "perf.data"
        if args.perf_cpu is not None:
            cmd = ["perf", "sched", "record", "-C", str(args.perf_cpu), "-o", str(data), "--"]
            cmd += ["sleep", str(args.seconds)]
            perf = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)  # let it start before the first request
        result = report(drive(host, port, request, args.seconds), args.slow)
        if perf is not None:
            perf.wait()
            if args.gateway_pid:
                hist = subprocess.run(
                    ["perf", "sched", "timehist", "-i", str(data), "-C", str(args.perf_cpu)],
                    capture_output=True,
                    text=True,
                    check=False,
                ).stdout
                result["cpu_waits"] = blame(hist, args.gateway_pid, args.recorder_pid, args.min_wait)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
