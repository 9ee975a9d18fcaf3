"""Throughput at saturation with ``wrk``: POST JSON from a Lua script, summary printed by the script as JSON.

The Lua ``done`` hook prints one line ``WRK_JSON {...}`` with requests, duration, non-2xx responses, socket
errors and latency percentiles, so nothing depends on parsing wrk's human-readable report.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[%(body)s]==]

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %%d, "duration_us": %%d, "non_2xx": %%d, "connect_errors": %%d, ' ..
    '"read_errors": %%d, "write_errors": %%d, "timeouts": %%d, "p50_us": %%d, "p90_us": %%d, ' ..
    '"p99_us": %%d, "max_us": %%d, "mean_us": %%d}\\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    math.floor(latency.mean)))
end
"""


def available() -> str | None:
    """The path of ``wrk``, or ``None`` when it is not installed."""
    return shutil.which("wrk")


def version() -> str | None:
    path = available()
    if path is None:
        return None
    out = subprocess.run([path, "-v"], capture_output=True, text=True, timeout=10)
    return (out.stdout + out.stderr).strip().splitlines()[0] if (out.stdout + out.stderr).strip() else None


def run(
    url: str,
    body: bytes,
    connections: int,
    duration: float,
    work_dir: Path,
    timeout_s: int = 10,
    headers: dict[str, str] | None = None,
) -> dict:
    """One wrk run with one thread (its core is shared with the upstream) and ``connections`` connections."""
    script = work_dir / "post.lua"
    extra = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in (headers or {}).items())
    script.write_text(extra + _LUA % {"body": body.decode()})
    cmd = [
        available() or "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        f"--timeout={timeout_s}s",
        "-s",
        str(script),
        url,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + timeout_s + 30)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary (exit {out.returncode}):\n{out.stdout}\n{out.stderr}")
    raw = json.loads(line[len("WRK_JSON ") :])
    seconds = raw["duration_us"] / 1e6
    return {
        "tool": "wrk",
        "connections": connections,
        "duration_s": round(seconds, 2),
        "requests": raw["requests"],
        "requests_per_s": round(raw["requests"] / seconds, 1) if seconds else 0.0,
        "non_2xx": raw["non_2xx"],
        "socket_errors": sum(raw[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts")),
        "latency_ms": {k: round(raw[f"{k}_us"] / 1000, 3) for k in ("p50", "p90", "p99", "mean", "max")},
    }
