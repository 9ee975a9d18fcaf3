"""``interlock keys|teams|models`` against a real admin server (uvicorn on a free port)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from click.testing import CliRunner, Result

from interlock.cli import main
from interlock.settings import Settings
from services.admin import create_admin_app
from tests.support.servers import free_port

ADMIN, VIEWER = "cli-admin-token", "cli-viewer-token"
MODEL = {"name": "small", "deployments": [{"url": "http://127.0.0.1:9"}]}


@pytest.fixture(scope="module")
def admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A standalone admin API (its own runtime, migrations and SQLite file) served by uvicorn."""
    db = tmp_path_factory.mktemp("cli") / "interlock.db"
    settings = Settings(
        database={"url": f"sqlite:///{db}"},
        models=[MODEL],
        access={"admin_tokens": {ADMIN: "admin", VIEWER: "viewer"}},
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_admin_app(settings=settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "admin server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def cli(admin_url: str, *args: str, token: str | None = ADMIN) -> Result:
    env = {"INTERLOCK_ADMIN_URL": admin_url, "INTERLOCK_ADMIN_TOKEN": token or ""}
    return CliRunner().invoke(main, list(args), env=env)


def test_when_a_key_is_created_then_the_full_key_is_printed_once_and_listed_by_prefix(admin_url):
    created = cli(admin_url, "keys", "create", "cli-app", "--model", "small", "--rpm", "60", "--json")
    assert created.exit_code == 0, created.output
    key = json.loads(created.stdout)
    assert key["key"].startswith("sk-il-") and key["limits"]["rpm"] == 60

    listed = cli(admin_url, "keys", "list")
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.stdout.splitlines() if "cli-app" in line)
    assert key["key_prefix"] in row and "active" in row
    assert key["key"] not in listed.stdout

    plain = cli(admin_url, "keys", "create", "cli-app-2")
    assert plain.exit_code == 0 and "sk-il-" in plain.stdout
    assert "shown only this once" in plain.stderr


def test_when_a_key_is_revoked_then_it_shows_as_revoked(admin_url):
    cli(admin_url, "keys", "create", "doomed")
    revoked = cli(admin_url, "keys", "revoke", "doomed", "--json")
    assert revoked.exit_code == 0, revoked.output
    assert json.loads(revoked.stdout)["status"] == "revoked"
    assert "doomed" not in cli(admin_url, "keys", "list").stdout
    assert "doomed" in cli(admin_url, "keys", "list", "--all").stdout


def test_when_a_key_is_updated_and_rotated_then_the_changes_show(admin_url):
    first = json.loads(cli(admin_url, "keys", "create", "turner", "--json").stdout)
    updated = cli(admin_url, "keys", "update", "turner", "--tpm", "500", "--expires-in", "30d", "--json")
    assert updated.exit_code == 0, updated.output
    body = json.loads(updated.stdout)
    assert body["limits"]["tpm"] == 500 and body["expires_at"] is not None

    rotated = json.loads(cli(admin_url, "keys", "rotate", "turner", "--json").stdout)
    assert rotated["id"] == first["id"] and rotated["key"] != first["key"]


def test_when_teams_and_models_are_managed_then_the_cli_reports_them(admin_url, tmp_path):
    assert cli(admin_url, "teams", "create", "cli-team", "--model", "small").exit_code == 0
    assert "cli-team" in cli(admin_url, "teams", "list").stdout
    member = json.loads(cli(admin_url, "keys", "create", "member", "--team", "cli-team", "--json").stdout)
    assert member["team_name"] == "cli-team"

    spec = tmp_path / "models.yaml"
    spec.write_text("models:\n  - name: org/extra\n    deployments: [{url: 'http://10.0.0.7:8000'}]\n")
    assert cli(admin_url, "models", "set", str(spec)).exit_code == 0
    listed = cli(admin_url, "models", "list").stdout
    assert "org/extra" in listed and "override" in listed
    assert cli(admin_url, "models", "delete", "org/extra").exit_code == 0
    assert "org/extra" not in cli(admin_url, "models", "list").stdout


@pytest.mark.parametrize(
    ("args", "token", "message"),
    [
        (["keys", "create", "nope"], VIEWER, "read-only"),
        (["keys", "list"], None, "Authorization: Bearer"),
        (["keys", "list"], "wrong", "unknown admin token"),
        (["keys", "show", "no-such-key"], ADMIN, "not found"),
        (["keys", "create", "bad", "--model", "gpt-9"], ADMIN, "allowed_models"),
        (["keys", "create", "bad", "--rpm", "many"], ADMIN, "--rpm"),
    ],
)
def test_when_a_command_fails_then_it_exits_non_zero_with_the_reason(admin_url, args, token, message):
    result = cli(admin_url, *args, token=token)
    assert result.exit_code != 0
    assert message in result.stderr


def test_when_the_admin_api_is_unreachable_then_the_cli_says_so():
    result = cli(f"http://127.0.0.1:{free_port()}/admin", "keys", "list")
    assert result.exit_code == 1
    assert "cannot reach the admin API" in result.stderr


def test_when_a_key_is_hashed_then_it_matches_what_the_settings_expect():
    from gateway.access import hash_key

    result = CliRunner().invoke(main, ["keys", "hash"], input="sk-il-abc\n")
    assert result.exit_code == 0 and result.stdout.strip() == hash_key("sk-il-abc")
