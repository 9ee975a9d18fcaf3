"""The observability stack of docker-compose.yml as files: the collector forwards traces to Jaeger, Grafana has
Prometheus and Jaeger provisioned, and every metric its dashboard plots is one the gateway exports."""

from __future__ import annotations

import json
import re

import yaml

from observability import GatewayMetrics
from tests.deploy.conftest import COMPOSE_FILE, DEPLOY, image_is_pinned

GRAFANA = DEPLOY / "compose" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "interlock.json"


def compose_services() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())["services"]


def exported_metric_names() -> set[str]:
    """Sample names the gateway's registry exposes (``_total``, ``_bucket`` ... included)."""
    names = set()
    for family in GatewayMetrics().registry.collect():
        names.add(family.name)
        for suffix in ("_total", "_bucket", "_sum", "_count", "_created"):
            names.add(family.name + suffix)
    return names


def test_when_the_collector_config_is_read_then_traces_go_to_the_jaeger_service():
    config = yaml.safe_load((DEPLOY / "compose" / "otel-collector.yaml").read_text())
    exporters = config["service"]["pipelines"]["traces"]["exporters"]
    assert "otlp/jaeger" in exporters
    host = config["exporters"]["otlp/jaeger"]["endpoint"].split(":")[0]
    assert host == "jaeger" and host in compose_services()


def test_when_grafana_is_provisioned_then_its_datasources_are_compose_services():
    services = compose_services()
    grafana = services["grafana"]
    assert image_is_pinned(grafana["image"]) and image_is_pinned(services["jaeger"]["image"])
    mounts = {m.split(":")[1] for m in grafana["volumes"]}
    assert {"/etc/grafana/provisioning", "/var/lib/grafana/dashboards"} <= mounts
    sources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "interlock.yaml").read_text())["datasources"]
    hosts = {s["uid"]: re.match(r"https?://([^:/]+)", s["url"]).group(1) for s in sources}
    assert hosts == {"prometheus": "prometheus", "jaeger": "jaeger"} and set(hosts.values()) <= set(services)
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "interlock.yaml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_when_the_dashboard_is_read_then_every_metric_it_plots_is_exported_by_the_gateway():
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\b(interlock_[a-z_]+)", e)}
    assert used and used <= exported_metric_names(), used - exported_metric_names()
    # The families the console's issue lists, present today (cache, guards and routing have their own modules).
    assert {"interlock_goodput_total", "interlock_feedback_total", "interlock_time_to_first_token_seconds_bucket",
            "interlock_time_per_output_token_seconds_bucket", "interlock_cost_usd_total"} <= used  # fmt: skip
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    assert all(p["datasource"]["uid"] == "prometheus" for p in dashboard["panels"])
