"""``interlock policies list|show|put|delete``: guardrail policies over the admin API (HTTP).

Same ``--url``/``--token``/``--json`` as ``interlock keys``; a stored policy reaches every replica without a
restart. ``put NAME FILE`` reads a policy from YAML or JSON (with an optional ``attach`` of models, teams, keys).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import click

from interlock.commands.admin import Api, _emit, _with_api

_COLUMNS = [
    ("NAME", lambda r: r["name"]),
    ("SOURCE", lambda r: r["source"]),
    ("VERSION", lambda r: r["version"]),
    ("INPUT", lambda r: sorted(r["policy"].get("input", {}))),
    ("OUTPUT", lambda r: sorted(r["policy"].get("output", {}))),
    ("ATTACHED", lambda r: [f"{k[:-1]}:{t}" for k, ts in r["attach"].items() for t in ts]),
]


@click.group()
def policies() -> None:
    """Guardrail policies: list, show, put from a file, delete (changes reach every replica without a restart)."""


@policies.command("list")
@_with_api
def list_policies(api: Api, as_json: bool) -> None:
    """List the effective policies (YAML overlaid by stored ones)."""
    _emit(api("GET", "/policies"), as_json, _COLUMNS)


@policies.command("show")
@_with_api
@click.argument("name")
def show_policy(api: Api, as_json: bool, name: str) -> None:
    """Print policy NAME as JSON."""
    _emit(api("GET", f"/policies/{quote(name, safe='')}"), True)


@policies.command("put")
@_with_api
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def put_policy(api: Api, as_json: bool, name: str, file: Path) -> None:
    """Store policy NAME from FILE (YAML or JSON); an invalid one is refused with the field named."""
    import yaml

    try:
        data = yaml.safe_load(file.read_text())  # JSON is YAML too
    except yaml.YAMLError as exc:
        raise click.ClickException(f"{file}: not valid YAML or JSON: {exc}") from exc
    stored = api("PUT", f"/policies/{quote(name, safe='')}", data)
    _emit(stored, as_json, _COLUMNS)


@policies.command("delete")
@_with_api
@click.argument("name")
def delete_policy(api: Api, as_json: bool, name: str) -> None:
    """Remove stored policy NAME from every replica."""
    api("DELETE", f"/policies/{quote(name, safe='')}")
    if as_json:
        _emit({"deleted": name}, True)
    else:
        click.echo(f"policy {name!r} deleted")
