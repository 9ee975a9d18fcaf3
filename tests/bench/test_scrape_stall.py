"""bench/scrape_stall.py and bench/scrape_loop_lag.py run end to end and report what the README quotes. No timing is
asserted: the figures are for people (a shared machine makes any bound flaky), the structure is for the scripts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parents[2] / "bench"
ENV = {**os.environ, "PYTHONPATH": str(BENCH.parent)}


def run(script: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=180,
                          env=ENV, cwd=BENCH.parent)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_when_scrapes_run_beside_requests_then_each_scrape_reports_the_slowest_request_it_overlapped():
    out = run("scrape_stall.py", "--seconds", "1.5", "--scrape-every", "0.2", "--versions", "30")
    assert out["conditions"]["metrics_lines"] > 20 * 29  # the fill gave each system prompt a series (~29 lines)
    assert out["quiet"]["requests"] > 0 and "scrapes" not in out["quiet"]
    scrapes = out["scraping"]["scrapes"]
    assert scrapes["count"] >= 2 and scrapes["bytes"] > 0
    assert 0 < scrapes["worst_request_during_scrape_median_ms"] <= scrapes["worst_request_during_scrape_max_ms"]


def test_when_the_loop_lag_is_measured_then_the_loop_and_each_switch_interval_have_a_row():
    out = run("scrape_loop_lag.py", "--renders", "1")
    assert out["lines"] > 5000  # the registry at its label bound
    rows = ("on_loop", "thread_switch_default", "thread_switch_0.002", "thread_switch_0.0005")
    assert all(out[row]["worst_wakeup_ms"] >= out[row]["median_wakeup_ms"] >= 0 for row in rows)
