"""The benchmark runs end to end and proves its conditions: every request to the gateway became a record and two
spans, nothing failed, and the report carries the figures README.md quotes. No timing is asserted here: the
figures are for people (bench/README.md), not pass marks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_when_the_benchmark_runs_briefly_then_it_reports_every_figure_with_records_and_spans_on(tmp_path):
    out = tmp_path / "run.json"
    command = [sys.executable, str(REPO / "bench" / "gateway_overhead.py"), "--requests", "60", "--warmup", "20"]
    command += ["--duration", "1", "--no-thin-proxy", "--no-wrk", "--json-out", str(out)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["errors"] == {}
    assert set(report["summary"]) == {"direct", "interlock_sqlite"}
    gateway = report["results"]["interlock_sqlite"]
    assert gateway["records_written"] > 200 and gateway["spans_exported"] == 2 * gateway["records_written"]
    assert gateway["gateway_metrics"]["interlock_records_pending"] == 0
    assert set(report["targets"]["interlock_sqlite"]) == {"added_c1_p50_ms", "added_c1_p99_ms", "saturation_rps"}
    deferred = gateway["saturation"]["deferred"]
    assert deferred["records_still_pending"] == 0 and "drain_s" in deferred
    assert report["summary"]["interlock_sqlite"]["saturation_sustainable_rps"] > 0
