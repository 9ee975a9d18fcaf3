"""The settings tree: YAML, environment overrides, and errors that name the key."""

import pytest

from gateway.errors import ConfigError
from interlock.settings import load_settings

MODEL = {"name": "m", "deployments": [{"kind": "vllm", "url": "http://w:8000/v1/"}]}


def test_when_the_example_file_loads_then_every_section_is_typed():
    s = load_settings("config/interlock.example.yaml")
    assert s.models[0].deployments[0].url == "http://10.0.0.11:8000"
    assert s.retries.attempts == 3


def test_when_a_url_ends_in_v1_then_it_is_normalised_and_names_the_deployment():
    d = load_settings(None, models=[MODEL]).models[0].deployments[0]
    assert d.url == "http://w:8000" and d.name == "http://w:8000"


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"server": {"prot": 1}}, "server.prot"),
        ({"server": {"port": 0}}, "server.port"),
        ({"models": [{"name": "m", "deployments": [{"kind": "vllm"}]}]}, "needs a url"),
        ({"models": [{"name": "m", "deployments": []}]}, "models.0.deployments"),
        ({"models": [MODEL, MODEL]}, "repeated"),
        ({"models": [{**MODEL, "fallbacks": ["ghost"]}]}, "ghost"),
        ({"retries": {"attempts": 0}}, "retries.attempts"),
    ],
)
def test_when_a_setting_is_invalid_then_the_error_names_it(data, needle):
    with pytest.raises(ConfigError) as err:
        load_settings(None, **data)
    assert needle in str(err.value)


def test_when_env_vars_are_set_then_they_override_the_file(tmp_path, monkeypatch):
    f = tmp_path / "c.yaml"
    f.write_text("server:\n  port: 8001\n")
    monkeypatch.setenv("INTERLOCK_SERVER__PORT", "9001")
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u@h/db")
    s = load_settings(f)
    assert s.server.port == 9001 and s.database.url == "postgresql+psycopg://u@h/db"


@pytest.mark.parametrize("text", ["server: [1, 2", "- just\n- a list\n"])
def test_when_the_file_is_broken_then_startup_stops_with_a_message(tmp_path, text):
    f = tmp_path / "c.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError):
        load_settings(f)
