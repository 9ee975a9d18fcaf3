"""Where the gateway's time goes under saturation: py-spy samples the running worker while wrk loads it.

``record`` starts ``py-spy record --format raw`` (collapsed stacks, one ``frame;frame;... count`` per line,
readable by speedscope and flamegraph.pl) for a fixed time. ``summarize`` turns that file into shares of
samples: per thread, per package (the innermost Python frame's package, with the native code it called;
garbage collection and waits for the GIL split out), per function (same attribution), and the inclusive
share of the project's own functions. The profiled run is separate from the measured one: sampling slows it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
_STDLIB = sysconfig.get_paths()["stdlib"]


def py_spy() -> str | None:
    """The py-spy executable next to this interpreter, or on PATH."""
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


#: How the samples are taken; reported with the summary.
MODE = "py-spy record --gil --native --threads --rate 100"


def record(pid: int, duration: float, out: Path, *, rate: int = 100) -> subprocess.Popen:
    """Sample only threads holding the GIL (so idle threads and GIL waits are not counted: the shares are of the
    CPU time that runs Python), with native frames (uvloop, orjson, the garbage collector)."""
    exe = py_spy()
    if exe is None:
        raise RuntimeError("py-spy is not installed: .venv/bin/pip install py-spy")
    cmd = [exe, "record", "--pid", str(pid), "--duration", str(max(1, round(duration))), "--rate", str(rate)]
    cmd += ["--format", "raw", "--threads", "--full-filenames", "--gil", "--native", "--output", str(out)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)


def _parse(frame: str) -> tuple[str, str]:
    m = _FRAME.match(frame.strip())
    return (m["func"], m["file"]) if m else (frame.strip(), "")


def _package(path: str) -> str:
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if _is_project(path):
        return "interlock:" + Path(path).relative_to(REPO).parts[0]
    if path.startswith(_STDLIB) and path.endswith(".py"):
        return "stdlib:" + Path(path).relative_to(_STDLIB).parts[0].removesuffix(".py")
    return path


def _is_project(path: str) -> bool:
    return path.startswith(str(REPO)) and "/.venv/" not in path and "site-packages" not in path


def _short(func: str, path: str) -> str:
    for root in ("site-packages/", _STDLIB + "/", str(REPO) + "/"):
        if root in path:
            path = path.split(root, 1)[1]
            break
    return f"{func} ({path})"


def summarize(raw: Path, top: int = 25) -> dict:
    threads: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    project: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        thread = frames.pop(0) if frames and frames[0].startswith(("thread ", "process ")) else "?"
        samples += n
        threads[thread.split(": ", 1)[-1]] += n
        parsed = [_parse(f) for f in frames]
        python = [i for i, (_, path) in enumerate(parsed) if path.endswith(".py")]
        below = [func for func, _ in parsed[python[-1] + 1 :]] if python else [func for func, _ in parsed]
        if any("gc_collect" in func for func in below):
            key = "gc (cyclic garbage collector)"
            packages[key] += n
            functions[key] += n
        elif any(func.startswith(("take_gil", "drop_gil")) for func in below):
            packages["waiting for the GIL"] += n
            functions["waiting for the GIL"] += n
        elif any(func.startswith(("PyThread_acquire_lock", "_queue_SimpleQueue_get")) for func in below):
            key = "idle: a thread waiting on a lock or queue"
            packages[key] += n
            functions[key] += n
        elif python:
            func, path = parsed[python[-1]]
            packages[_package(path)] += n
            functions[_short(func, path)] += n
        else:
            packages["native, no Python frame"] += n
        for name in {_short(func, path) for func, path in parsed if _is_project(path)}:
            project[name] += n
        for package in {_package(path) for _, path in parsed if path.endswith(".py")}:
            inclusive[package] += n

    def pct(counter: Counter[str]) -> list[dict]:
        return [{"name": k, "pct": round(100 * v / samples, 1)} for k, v in counter.most_common(top)] if samples else []

    return {
        "mode": MODE,
        "samples": samples,
        "threads": pct(threads),
        "by_package": pct(packages),
        "by_function": pct(functions),
        "by_package_inclusive": pct(inclusive),
        "project_inclusive": pct(project),
    }
