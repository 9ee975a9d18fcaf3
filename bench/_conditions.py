"""What the figures were measured under: machine, versions, and how busy the machine was with other work.

``CpuMeter`` tells apart the CPU the benchmark's own processes used from what everything else on the machine
used meanwhile (``foreign_cores``: 0.0 on a quiet machine, 1.0 when another program kept a whole core busy).
A phase with a high foreign load measured the neighbours as much as the gateway.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import sys
import time
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
PACKAGES = (
    "interlock",
    "uvicorn",
    "uvloop",
    "httptools",
    "aiohttp",
    "orjson",
    "pydantic",
    "opentelemetry-sdk",
    "sqlalchemy",
    "psycopg",
    "litellm",
)


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def machine() -> dict:
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def _busy_ticks() -> int:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in fields]
    # user nice system idle iowait irq softirq steal ...: everything except idle and iowait is busy
    return sum(values) - values[3] - values[4]


def _proc_ticks(pid: int, with_children: bool) -> int:
    with contextlib.suppress(OSError, IndexError, ValueError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime
        if with_children:
            ticks += int(fields[13]) + int(fields[14])  # cutime, cstime: children already waited for
        return ticks
    return 0


def _children(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                out += [int(c) for c in (task / "children").read_text().split()]
    return out


def _tree_ticks(root: int) -> int:
    """CPU ticks of ``root`` and all its descendants, living or reaped."""
    total, stack, seen = 0, [root], set()
    while stack and len(seen) < 10_000:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += _proc_ticks(pid, with_children=True)
        stack += _children(pid)
    return total


class CpuMeter:
    """``with CpuMeter(target_pid) as m: ...`` then ``m.result(requests)``: cores used by the benchmark, by
    everything else on the machine, and by the target (the server measured) per request it served."""

    def __init__(self, target: int | None = None, parts: dict[str, int] | None = None) -> None:
        """``parts``: processes of the target's tree (name: pid) whose share is reported apart, e.g. the
        gateway's recorder: ``<name>_cpu_us_per_request``, and the rest as ``rest_cpu_us_per_request``."""
        self.target = target
        self.parts = dict(parts or {})

    def _snapshot(self) -> tuple[float, int, int, int, dict[str, int]]:
        target = _tree_ticks(self.target) if self.target else 0
        parts = {name: _proc_ticks(pid, with_children=True) for name, pid in self.parts.items()}
        return time.monotonic(), _busy_ticks(), _tree_ticks(os.getpid()), target, parts

    def __enter__(self) -> CpuMeter:
        self._start = self._snapshot()
        return self

    def __exit__(self, *exc: object) -> None:
        self._end = self._snapshot()

    def result(self, requests: int = 0) -> dict[str, float]:
        (t0, busy0, own0, target0, parts0), (t1, busy1, own1, target1, parts1) = self._start, self._end
        seconds = max(1e-9, t1 - t0)
        busy = (busy1 - busy0) / _TICKS / seconds
        own = (own1 - own0) / _TICKS / seconds
        out = {"bench_cores": round(own, 2), "foreign_cores": round(max(0.0, busy - own), 2)}
        if self.target:
            cpu = (target1 - target0) / _TICKS
            out["target_cores"] = round(cpu / seconds, 2)
            if requests:
                out["target_cpu_us_per_request"] = round(cpu / requests * 1e6, 1)
                rest = cpu
                for name in self.parts:
                    # A part that exited meanwhile (a restarted recorder) reads 0: never below 0.
                    part = max(0, parts1[name] - parts0[name]) / _TICKS
                    out[f"{name}_cpu_us_per_request"] = round(part / requests * 1e6, 1)
                    rest -= part
                if self.parts:
                    out["rest_cpu_us_per_request"] = round(max(0.0, rest) / requests * 1e6, 1)
        return out


def find_descendant(needle: str) -> int | None:
    """The first living descendant whose command line contains ``needle``."""
    for proc in affinities():
        if needle in proc["cmd"]:
            return proc["pid"]
    return None


def affinities() -> list[dict]:
    """Every living descendant of this process with the cores it may run on: proof of the pinning."""
    out, stack, seen = [], [os.getpid()], set()
    while stack and len(seen) < 1000:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        with contextlib.suppress(OSError):
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            words = [w.decode(errors="replace") for w in cmd if w]
            out.append({"pid": pid, "cmd": " ".join(words)[:120], "cpus": sorted(os.sched_getaffinity(pid))})
        stack += _children(pid)
    return out
