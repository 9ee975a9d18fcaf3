"""The provisioned Grafana dashboard filters each metric only by labels that metric has: a filter on a label a
family lacks (``key`` on the feedback family, say) would silently match nothing once a value is picked."""

from __future__ import annotations

import json
import re
from pathlib import Path

from observability import GatewayMetrics

DASHBOARD = Path(__file__).parents[2] / "deploy" / "compose" / "grafana" / "dashboards" / "interlock.json"
SELECTOR = re.compile(r"\b(interlock_[a-z_]+)\{([^}]*)\}")


def family_labels() -> dict[str, set[str]]:
    """{sample name: its label names} of the families the dashboard filters (no sample exists before a request)."""
    out: dict[str, set[str]] = {}
    m = GatewayMetrics()
    for metric in (m.requests, m.latency, m.ttft, m.tpot, m.tokens, m.cost, m.goodput, m.feedback):
        names = set(metric._labelnames)
        for suffix in ("_total", "_bucket", "_count", "_sum"):
            out.setdefault(metric._name + suffix, set()).update(names | ({"le"} if suffix == "_bucket" else set()))
    return out


def test_when_the_dashboard_filters_a_metric_then_the_metric_has_that_label():
    labels = family_labels()
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"model", "route", "key", "team", "prompt_version"} <= variables
    checked = 0
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            for name, matchers in SELECTOR.findall(target["expr"]):
                used = set(re.findall(r"([a-z_]+)\s*=~?", matchers))
                assert used <= labels[name], (panel["title"], name, used - labels[name])
                checked += 1
    assert checked > 20
    by_key = [p for p in dashboard["panels"] if "by key" in p["title"]]
    assert by_key and all("sum by (key)" in t["expr"] for p in by_key for t in p["targets"])
