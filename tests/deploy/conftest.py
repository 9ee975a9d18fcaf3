"""Helpers for the deployment checks: where the files are, a clean settings environment, the real CLI parser."""

from __future__ import annotations

import os
from pathlib import Path

import click
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = ROOT / "docker-compose.yml"
K8S = DEPLOY / "k8s"
CONTAINER_CONFIG = "/etc/interlock/interlock.yaml"
"""Where the image, compose and Kubernetes put the gateway's settings file."""


def yaml_files() -> list[Path]:
    """Every YAML file the deployment consists of."""
    found = [p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml")]
    return sorted([COMPOSE_FILE, *found])


def k8s_documents() -> list[tuple[Path, dict]]:
    """Every Kubernetes object under deploy/k8s (kustomizations and the settings file are not objects)."""
    docs = []
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name in ("kustomization.yaml", "interlock.yaml"):
            continue
        docs += [(path, d) for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def parse_cli(args: list[str], config_file: Path) -> click.Context:
    """Parse a container's ``interlock`` arguments with the real CLI, the container's config path mapped to the
    file that gets mounted there. Raises ``click.UsageError`` for an unknown command or option."""
    from interlock.cli import main

    local = [str(config_file) if a == CONTAINER_CONFIG else a for a in args]
    parent = click.Context(main, info_name="interlock")
    command = main.get_command(parent, local[0])
    if command is None:
        raise click.UsageError(f"no interlock subcommand {local[0]!r}")
    return command.make_context(local[0], local[1:], parent=parent)


def image_is_pinned(image: str) -> bool:
    """``name:tag`` (or a digest) with a tag other than ``latest``."""
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag not in ("", "latest")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No settings from the test runner's environment leak into ``load_settings``."""
    for name in list(os.environ):
        if name.startswith("INTERLOCK_") or name in ("DATABASE_URL", "REDIS_URL"):
            monkeypatch.delenv(name)
    return monkeypatch
