"""``interlock keys|teams|models``: common admin tasks, over the admin API (HTTP).

Every command takes ``--url`` (``INTERLOCK_ADMIN_URL``), ``--token`` (``INTERLOCK_ADMIN_TOKEN``)
and ``--json``. Errors print the API's message and exit with status 1.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click

DEFAULT_URL = "http://127.0.0.1:8000/admin"
_LIMITS = {
    "rpm": ("rpm", int),
    "tpm": ("tpm", int),
    "max_concurrency": ("max-concurrency", int),
    "budget_daily_usd": ("budget-daily", float),
    "budget_monthly_usd": ("budget-monthly", float),
}


class Api:
    """A small admin API client: JSON in, JSON out, errors as ``click.ClickException``."""

    def __init__(self, url: str, token: str | None) -> None:
        self.url = url.rstrip("/")
        self.headers = {"authorization": f"Bearer {token}"} if token else {}

    def __call__(self, method: str, path: str, body: Any = None, params: dict | None = None) -> Any:
        import httpx

        try:
            r = httpx.request(method, self.url + path, json=body, params=params, headers=self.headers, timeout=30)
        except httpx.HTTPError as exc:
            raise click.ClickException(f"cannot reach the admin API at {self.url}: {exc}") from exc
        if r.status_code >= 400:
            try:
                message = r.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = r.text[:300] or r.reason_phrase
            raise click.ClickException(f"{message} (HTTP {r.status_code})")
        return r.json() if r.content else None


def _with_api(fn: Callable) -> Callable:
    """Add ``--url/--token/--json`` to a command and hand it an ``Api`` and the ``as_json`` flag."""

    @click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
    @click.option("--token", envvar="INTERLOCK_ADMIN_TOKEN", help="Admin token [env INTERLOCK_ADMIN_TOKEN].")
    @click.option(
        "--url", envvar="INTERLOCK_ADMIN_URL", default=DEFAULT_URL, show_default=True,
        help="Admin API base URL [env INTERLOCK_ADMIN_URL].",
    )  # fmt: skip
    @functools.wraps(fn)
    def command(url: str, token: str | None, as_json: bool, **params: Any) -> None:
        fn(Api(url, token), as_json, **params)

    return command


# -- option sets -----------------------------------------------------------------------------------
def _options(*options: Callable) -> Callable:
    """Apply several click options in the order they are listed."""

    def apply(fn: Callable) -> Callable:
        for opt in reversed(options):
            fn = opt(fn)
        return fn

    return apply


_GRANTS = [
    click.option("--model", "models", multiple=True, help="Allowed model (repeat); default: all."),
    click.option("--all-models", is_flag=True, help="Allow every model (clears --model)."),
    click.option("--route", "routes", multiple=True, type=click.Choice(["chat", "completions", "embeddings"])),
    click.option("--all-routes", is_flag=True, help="Allow every route."),
    *[
        click.option(f"--{flag}", field, metavar="N|none", help=f"{field} ('none' = unlimited).")
        for field, (flag, _) in _LIMITS.items()
    ],
    click.option("--metadata", "metadata", multiple=True, metavar="KEY=VALUE", help="Label (repeat)."),
]
_EXPIRY = [
    click.option("--expires-in", metavar="30d", help="Expire after this long (s, m, h, d, w)."),
    click.option("--expires-at", metavar="ISO", help="Expire at this time (ISO 8601; naive = UTC)."),
]


def _grants_body(params: dict[str, Any]) -> dict[str, Any]:
    """Only what was given, so an update leaves everything else alone."""
    body: dict[str, Any] = {}
    if params.pop("all_models"):
        body["allowed_models"] = None
    if models := params.pop("models"):
        body["allowed_models"] = list(models)
    if params.pop("all_routes"):
        body["allowed_routes"] = None
    if routes := params.pop("routes"):
        body["allowed_routes"] = list(routes)
    limits = {}
    for field, (flag, kind) in _LIMITS.items():
        value = params.pop(field)
        if value is not None:
            limits[field] = _limit(value, flag, kind)
    if limits:
        body["limits"] = limits
    if metadata := params.pop("metadata"):
        body["metadata"] = dict(_pair(item) for item in metadata)
    return body


def _limit(value: str, flag: str, kind: type) -> int | float | None:
    if value.lower() in ("none", "unlimited"):
        return None
    try:
        return kind(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a number or 'none'", param_hint=f"--{flag}") from None


def _pair(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise click.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint="--metadata")
    return key, value


def _expiry(expires_in: str | None, expires_at: str | None) -> datetime | None:
    if expires_in:
        m = re.fullmatch(r"(\d+)([smhdw])", expires_in.strip())
        if not m:
            raise click.BadParameter("use a number and s, m, h, d or w, e.g. 30d", param_hint="--expires-in")
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[m.group(2)]
        return datetime.now(UTC) + timedelta(**{unit: int(m.group(1))})
    if expires_at:
        try:
            return datetime.fromisoformat(expires_at)
        except ValueError:
            raise click.BadParameter("use ISO 8601, e.g. 2030-01-31T00:00:00Z", param_hint="--expires-at") from None
    return None


# -- output ------------------------------------------------------------------------------------------
def _emit(data: Any, as_json: bool, columns: list[tuple[str, Callable[[dict], Any]]] | None = None) -> None:
    if as_json or columns is None:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    rows = data if isinstance(data, list) else [data]
    table = [[h for h, _ in columns]] + [[_cell(get(r)) for _, get in columns] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(columns))]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(map(str, value)) or "-"
    return str(value)


def _limits_cell(row: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in row["limits"].items() if v is not None) or "-"


_KEY_COLUMNS = [
    ("ID", lambda r: r["id"]),
    ("NAME", lambda r: r["name"]),
    ("PREFIX", lambda r: r["key_prefix"]),
    ("TEAM", lambda r: r["team_name"]),
    ("STATUS", lambda r: r["status"]),
    ("MODELS", lambda r: r["allowed_models"] if r["allowed_models"] is not None else "all"),
    ("LIMITS", _limits_cell),
    ("EXPIRES", lambda r: (r["expires_at"] or "")[:19] or None),
]
_TEAM_COLUMNS = [
    ("ID", lambda r: r["id"]),
    ("NAME", lambda r: r["name"]),
    ("MODELS", lambda r: r["allowed_models"] if r["allowed_models"] is not None else "all"),
    ("ROUTES", lambda r: r["allowed_routes"] if r["allowed_routes"] is not None else "all"),
    ("LIMITS", _limits_cell),
]
_MODEL_COLUMNS = [
    ("NAME", lambda r: r["name"]),
    ("SOURCE", lambda r: r["source"]),
    ("ROUTING", lambda r: r["config"]["routing"]),
    ("DEPLOYMENTS", lambda r: [d["name"] for d in r["config"]["deployments"]]),
    ("FALLBACKS", lambda r: r["config"]["fallbacks"]),
]


def _emit_secret(data: dict, as_json: bool) -> None:
    if as_json:
        _emit(data, True)
        return
    click.echo(f"key {data['name']!r} ({data['id']}):\n\n    {data['key']}\n")
    click.echo("Store it now: it is shown only this once.", err=True)


# -- keys ----------------------------------------------------------------------------------------------
@click.group()
def keys() -> None:
    """Virtual API keys: create, list, show, update, rotate, revoke."""


@keys.command("create")
@_with_api
@click.argument("name")
@click.option("--team", help="Team id or name.")
@_options(*_GRANTS, *_EXPIRY)
def create_key(api: Api, as_json: bool, name: str, team: str | None, expires_in, expires_at, **params) -> None:
    """Create a key NAME; prints the full key once."""
    body = {"name": name, **_grants_body(params)}
    if team:
        body["team"] = team
    if expires := _expiry(expires_in, expires_at):
        body["expires_at"] = expires.isoformat()
    _emit_secret(api("POST", "/keys", body), as_json)


@keys.command("list")
@_with_api
@click.option("--team", help="Only keys of this team (id or name).")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked keys.")
def list_keys(api: Api, as_json: bool, team: str | None, include_revoked: bool) -> None:
    """List keys (never their secrets)."""
    params: dict[str, Any] = {"include_revoked": include_revoked}
    if team:
        params["team"] = team
    _emit(api("GET", "/keys", params=params), as_json, _KEY_COLUMNS)


@keys.command("show")
@_with_api
@click.argument("ref")
def show_key(api: Api, as_json: bool, ref: str) -> None:
    """Show key REF (id, name or visible prefix)."""
    _emit(api("GET", f"/keys/{quote(ref, safe='')}"), as_json, _KEY_COLUMNS)


@keys.command("update")
@_with_api
@click.argument("ref")
@click.option("--name", help="New name.")
@click.option("--team", help="Move to this team (id or name).")
@click.option("--no-team", is_flag=True, help="Take the key out of its team.")
@_options(*_GRANTS, *_EXPIRY)
@click.option("--no-expiry", is_flag=True, help="The key never expires.")
def update_key(api: Api, as_json: bool, ref: str, name, team, no_team, expires_in, expires_at, no_expiry, **params):
    """Change key REF; options left out stay as they are."""
    body = _grants_body(params)
    if name:
        body["name"] = name
    if team or no_team:
        body["team"] = None if no_team else team
    if no_expiry:
        body["expires_at"] = None
    elif expires := _expiry(expires_in, expires_at):
        body["expires_at"] = expires.isoformat()
    if not body:
        raise click.UsageError("nothing to change: give at least one option")
    _emit(api("PATCH", f"/keys/{quote(ref, safe='')}", body), as_json, _KEY_COLUMNS)


@keys.command("rotate")
@_with_api
@click.argument("ref")
@click.option("--grace", type=click.IntRange(0), default=0, show_default=True, help="Seconds the old secret works.")
def rotate_key(api: Api, as_json: bool, ref: str, grace: int) -> None:
    """Give key REF a new secret; prints it once."""
    _emit_secret(api("POST", f"/keys/{quote(ref, safe='')}/rotate", {"grace_seconds": grace}), as_json)


@keys.command("revoke")
@_with_api
@click.argument("ref")
def revoke_key(api: Api, as_json: bool, ref: str) -> None:
    """Revoke key REF: it stops working on every replica within a second."""
    _emit(api("POST", f"/keys/{quote(ref, safe='')}/revoke"), as_json, _KEY_COLUMNS)


@keys.command("hash")
@click.argument("key", required=False)
def hash_key_command(key: str | None) -> None:
    """Print the SHA-256 of KEY (or of stdin) for ``access.keys[].key_hash`` in the settings file."""
    import hashlib

    secret = (key or sys.stdin.readline()).strip()
    if not secret:
        raise click.UsageError("give the key as an argument or on stdin")
    click.echo(hashlib.sha256(secret.encode()).hexdigest())


# -- teams -----------------------------------------------------------------------------------------------
@click.group()
def teams() -> None:
    """Teams: groups of keys sharing model grants and limits."""


@teams.command("create")
@_with_api
@click.argument("name")
@_options(*_GRANTS)
def create_team(api: Api, as_json: bool, name: str, **params) -> None:
    """Create team NAME."""
    _emit(api("POST", "/teams", {"name": name, **_grants_body(params)}), as_json, _TEAM_COLUMNS)


@teams.command("list")
@_with_api
def list_teams(api: Api, as_json: bool) -> None:
    """List teams."""
    _emit(api("GET", "/teams"), as_json, _TEAM_COLUMNS)


@teams.command("show")
@_with_api
@click.argument("ref")
def show_team(api: Api, as_json: bool, ref: str) -> None:
    """Show team REF (id or name)."""
    _emit(api("GET", f"/teams/{quote(ref, safe='')}"), as_json, _TEAM_COLUMNS)


@teams.command("update")
@_with_api
@click.argument("ref")
@click.option("--name", help="New name.")
@_options(*_GRANTS)
def update_team(api: Api, as_json: bool, ref: str, name: str | None, **params) -> None:
    """Change team REF; options left out stay as they are."""
    body = _grants_body(params)
    if name:
        body["name"] = name
    if not body:
        raise click.UsageError("nothing to change: give at least one option")
    _emit(api("PATCH", f"/teams/{quote(ref, safe='')}", body), as_json, _TEAM_COLUMNS)


@teams.command("delete")
@_with_api
@click.argument("ref")
def delete_team(api: Api, as_json: bool, ref: str) -> None:
    """Delete team REF (refused while it has live keys)."""
    _emit(api("DELETE", f"/teams/{quote(ref, safe='')}"), as_json, _TEAM_COLUMNS)


# -- models ----------------------------------------------------------------------------------------------
@click.group()
def models() -> None:
    """Models: list, set from a file, delete (changes reach every replica without a restart)."""


@models.command("list")
@_with_api
def list_models(api: Api, as_json: bool) -> None:
    """List the effective models (YAML overlaid by admin changes)."""
    _emit(api("GET", "/models"), as_json, _MODEL_COLUMNS)


@models.command("set")
@_with_api
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def set_models(api: Api, as_json: bool, file: Path) -> None:
    """Add or replace the model(s) in FILE (YAML or JSON: one model, a list, or {models: [...]})."""
    import yaml

    try:
        data = yaml.safe_load(file.read_text())  # JSON is YAML too
    except yaml.YAMLError as exc:
        raise click.ClickException(f"{file}: not valid YAML or JSON: {exc}") from exc
    items = data.get("models", data) if isinstance(data, dict) and "models" in data else data
    items = items if isinstance(items, list) else [items]
    if not all(isinstance(m, dict) and isinstance(m.get("name"), str) for m in items):
        raise click.ClickException(f"{file}: every model needs a mapping with a 'name'")
    done = [api("PUT", f"/models/{quote(m['name'], safe='/')}", m) for m in items]
    _emit(done, as_json, _MODEL_COLUMNS)


@models.command("delete")
@_with_api
@click.argument("name")
def delete_model(api: Api, as_json: bool, name: str) -> None:
    """Remove model NAME from every replica."""
    api("DELETE", f"/models/{quote(name, safe='/')}")
    if as_json:
        _emit({"deleted": name}, True)
    else:
        click.echo(f"model {name!r} deleted")
