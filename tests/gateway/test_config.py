"""Deployment URLs are checked whole where they are configured: the settings file and the admin API share
``DeploymentConfig``, so a URL that would only fail when its upstream is built never gets that far."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from gateway.errors import ConfigError
from interlock.settings import load_settings

BAD_URLS = [
    ("http://127.0.0.1:99999", "port"),
    ("http://[::1", "not a valid URL"),
    ("http://127.0.0.1:0", "port"),
    ("http://host:abc", "port"),
    ("ftp://127.0.0.1:8000", "http:// or https://"),
    ("127.0.0.1:8000", "http:// or https://"),
    ("http://", "no host"),
    ("http://:8000", "no host"),
    ("http://exa mple:8000", "spaces"),
    ("http://user:secret@127.0.0.1:8000", "credentials"),
    ("http://127.0.0.1:8000/v1?x=1", "query"),
]


def _settings(url: str) -> dict:
    return {"models": [{"name": "m", "deployments": [{"kind": "vllm", "url": url}]}]}


@pytest.mark.parametrize(("url", "needle"), BAD_URLS)
def test_when_a_deployment_url_is_invalid_then_the_settings_error_names_the_key(url, needle):
    with pytest.raises(ConfigError) as err:
        load_settings(None, **_settings(url))
    assert "models.0.deployments.0.url" in str(err.value)
    assert needle in str(err.value)


@pytest.mark.parametrize(
    ("url", "stored"),
    [
        ("http://[::1]:8000", "http://[::1]:8000"),
        ("https://api.example.com/v1/", "https://api.example.com"),
        ("http://10.0.0.5:65535/prefix", "http://10.0.0.5:65535/prefix"),
    ],
)
def test_when_a_deployment_url_is_valid_then_it_is_accepted(url, stored):
    assert load_settings(None, **_settings(url)).models[0].deployments[0].url == stored


def test_when_the_yaml_has_a_bad_url_then_serve_stops_with_a_message_not_a_traceback(tmp_path):
    path = tmp_path / "interlock.yaml"
    path.write_text(yaml.safe_dump({**_settings("http://127.0.0.1:99999"), "database": {"url": "sqlite://"}}))
    done = subprocess.run(
        [sys.executable, "-c", "from interlock.cli import main; main()", "serve", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "models.0.deployments.0.url" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
