"""The deployment files: YAML that parses, Kubernetes objects that match the API schema and reference each other,
a gateway configuration the real settings loader accepts, and images pinned to a tag."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from interlock.settings import load_settings
from tests.deploy.conftest import (
    CONTAINER_CONFIG,
    DEPLOY,
    K8S,
    ROOT,
    image_is_pinned,
    k8s_documents,
    parse_cli,
    yaml_files,
)

KUBERNETES_VERSION = "1.30.0"
"""The oldest Kubernetes these manifests promise to work on."""
WORKLOADS = ("Deployment", "StatefulSet", "Job")
LONG_RUNNING = ("Deployment", "StatefulSet")


def _containers(doc: dict) -> list[dict]:
    return doc["spec"]["template"]["spec"]["containers"]


def _objects(kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for _, d in k8s_documents() if d["kind"] == kind}


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_when_a_deployment_yaml_file_is_parsed_then_each_document_is_a_mapping(path: Path):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs and all(isinstance(d, dict) for d in docs)


@pytest.mark.parametrize(
    ("path", "doc"),
    k8s_documents(),
    ids=lambda v: str(v.relative_to(K8S)) if isinstance(v, Path) else f"{v['kind']}/{v['metadata']['name']}",
)
def test_when_a_k8s_object_is_checked_against_the_api_schema_then_it_is_valid(path: Path, doc: dict):
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="install the dev extra")
    # strict: an unknown field (a typo such as `readinesProbe`) fails instead of being dropped by the API server
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("folder", [K8S, K8S / "dev"], ids=["base", "dev"])
def test_when_a_kustomization_is_read_then_every_file_it_names_exists(folder: Path):
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    names = list(kustomization["resources"])
    for generator in kustomization.get("configMapGenerator", []):
        names += generator["files"]
    assert names
    for name in names:
        assert (folder / name).exists(), f"{folder / 'kustomization.yaml'} names missing {name}"


def test_when_k8s_objects_reference_each_other_then_every_reference_resolves():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    config_maps = {g["name"] for g in kustomization["configMapGenerator"]}
    workloads = {name: d for kind in WORKLOADS for name, d in _objects(kind).items()}
    for name, doc in workloads.items():
        pod = doc["spec"]["template"]
        for volume in pod["spec"].get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps, name
        if doc["kind"] != "Job":
            assert doc["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items(), name
    pod_labels = [d["spec"]["template"]["metadata"]["labels"] for d in workloads.values()]
    for name, service in _objects("Service").items():
        assert any(service["spec"]["selector"].items() <= labels.items() for labels in pod_labels), name
    deployments = _objects("Deployment")
    for kind in ("HorizontalPodAutoscaler", "PodDisruptionBudget"):
        for name, doc in _objects(kind).items():
            target = doc["spec"].get("scaleTargetRef", {}).get("name", name)
            assert target in deployments, f"{kind}/{name} targets a missing Deployment {target}"


@pytest.mark.parametrize(
    ("path", "doc"),
    [(p, d) for p, d in k8s_documents() if d["kind"] in WORKLOADS],
    ids=lambda v: str(v.relative_to(K8S)) if isinstance(v, Path) else f"{v['kind']}/{v['metadata']['name']}",
)
def test_when_a_k8s_container_is_declared_then_it_has_limits_a_pinned_image_and_probes_if_long_running(
    path: Path, doc: dict
):
    for container in _containers(doc):
        limits = container.get("resources", {}).get("limits", {})
        assert {"cpu", "memory"} <= limits.keys(), f"{container['name']}: cpu and memory limits"
        assert image_is_pinned(container["image"]), container["image"]
        if doc["kind"] in LONG_RUNNING:  # a Job's one-shot command has no server to probe
            assert "readinessProbe" in container and "livenessProbe" in container, container["name"]


def test_when_the_k8s_gateway_config_is_loaded_with_its_secret_env_then_it_is_valid_and_routes_to_every_pod(
    clean_env,
):
    gateway = _objects("Deployment")["interlock-gateway"]
    [container] = _containers(gateway)
    samples = {
        "DATABASE_URL": "postgresql+psycopg://interlock:pw@db.example:5432/interlock",
        "REDIS_URL": "redis://:pw@cache.example:6379/0",
        "INTERLOCK_MASTER_KEY": "master",
        "INTERLOCK_ADMIN_TOKENS": json.dumps({"admin-token": "admin"}),
    }
    for env in container["env"]:
        clean_env.setenv(env["name"], samples[env["valueFrom"]["secretKeyRef"]["key"]])

    settings = load_settings(K8S / "interlock.yaml")

    assert settings.database.url == samples["DATABASE_URL"] and settings.redis.url == samples["REDIS_URL"]
    assert settings.access.master_key.get_secret_value() == "master"
    assert settings.access.admin_tokens == {"admin-token": "admin"} and settings.access.require_keys
    # The gateway lists vLLM replicas one by one: exactly the StatefulSet's pods behind its headless Service.
    vllm = _objects("StatefulSet")["vllm"]
    assert _objects("Service")[vllm["spec"]["serviceName"]]["spec"]["clusterIP"] == "None"
    pods = {f"http://vllm-{i}.{vllm['spec']['serviceName']}:8000" for i in range(vllm["spec"]["replicas"])}
    urls = {d.url for m in settings.models for d in m.deployments if d.kind == "vllm"}
    assert urls == pods
    served = next(a.split("=", 1)[1] for a in _containers(vllm)[0]["args"] if a.startswith("--served-model-name"))
    assert {d.model for m in settings.models for d in m.deployments if d.kind == "vllm"} == {served}
    # The record journal must be writable under a read-only root: on a volume of the pod's own.
    assert container["securityContext"]["readOnlyRootFilesystem"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"] if not m.get("readOnly")}
    volumes = {v["name"]: v for v in gateway["spec"]["template"]["spec"]["volumes"]}
    assert "emptyDir" in volumes[mounts[settings.database.journal_dir]]


@pytest.mark.parametrize("name", ["interlock-gateway", "interlock-migrate"])
def test_when_a_k8s_interlock_command_is_parsed_by_the_cli_then_it_is_accepted(name: str):
    doc = {**_objects("Deployment"), **_objects("Job")}[name]
    [container] = _containers(doc)
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert str(Path(CONTAINER_CONFIG).parent) in mounts
    ctx = parse_cli(container["args"], K8S / "interlock.yaml")
    assert ctx.params["config_path"] == str(K8S / "interlock.yaml")


def test_when_the_dockerfile_is_read_then_it_runs_interlock_as_non_root_with_a_health_check():
    text = (ROOT / "Dockerfile").read_text()
    bases = re.findall(r"^ARG PYTHON_IMAGE=(\S+)", text, re.M)
    assert bases and all(image_is_pinned(b) for b in bases)
    assert re.search(r"^USER (?!0\b|root\b)\S+", text, re.M)
    assert re.search(r"^EXPOSE 8000$", text, re.M)
    assert re.search(r"^HEALTHCHECK .*/health", text, re.M | re.S)
    assert re.search(r'^ENTRYPOINT \["interlock"\]$', text, re.M)
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))
    parse_cli(cmd, DEPLOY / "docker" / "interlock.yaml")
    # What the build copies in must not be excluded from the build context.
    ignored = (ROOT / ".dockerignore").read_text().split()
    for copied in re.findall(r"^COPY (?!--from)(\S+)", text, re.M):
        assert copied not in ignored and (ROOT / copied).exists(), copied


def test_when_the_image_default_config_is_loaded_then_it_serves_on_all_interfaces(clean_env):
    settings = load_settings(DEPLOY / "docker" / "interlock.yaml")
    assert settings.server.host == "0.0.0.0" and settings.server.port == 8000
    assert settings.database.url.startswith("sqlite:////var/lib/interlock/")
