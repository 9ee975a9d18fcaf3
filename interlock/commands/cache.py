"""``interlock cache clear``: invalidate cached answers over the admin API (``DELETE /admin/cache``)."""

from __future__ import annotations

import json

import click

from interlock.commands.admin import Api, _with_api


@click.group()
def cache() -> None:
    """Exact and semantic caches."""


@cache.command("clear")
@click.option("--scope", type=click.Choice(["key", "team", "user", "global"]), help="Only entries of this scope.")
@click.option("--owner", help="Only this owner in the scope: a key id, a team id, or <key id>/<user>.")
@click.option("--model", help="Only entries of this model.")
@click.option("--older-than", type=float, help="Only entries created more than this many seconds ago.")
@click.option("--kind", type=click.Choice(["exact", "semantic", "all"]), default="all", show_default=True)
@click.option("--all", "everything", is_flag=True, help="Clear everything (required when no filter is given).")
@_with_api
def clear(api: Api, as_json: bool, everything: bool, **filters: object) -> None:
    """Drop cached answers matching every filter given; prints how many each cache dropped."""
    params = {k: v for k, v in filters.items() if v is not None}
    if everything:
        params["all"] = "true"
    result = api("DELETE", "/cache", params=params)
    if as_json:
        click.echo(json.dumps(result))
    else:
        for kind, count in result.items():
            click.echo(f"{kind}: {count}")


@cache.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8400, show_default=True, type=int)
@click.option("--dim", default=384, show_default=True, type=int, help="Embedding dimension of the gateways' model.")
@click.option("--max-entries", default=50_000, show_default=True, type=int, help="Bound of the index.")
@click.option(
    "--otlp-endpoint",
    envvar="INTERLOCK_OBSERVABILITY__OTLP_ENDPOINT",
    help="OTLP/HTTP traces endpoint (the gateways'): each lookup is a span in the request's trace.",
)
def serve(host: str, port: int, dim: int, max_entries: int, otlp_endpoint: str | None) -> None:
    """Serve a semantic index shared by gateway replicas (``cache.semantic_backend: service``)."""
    import uvicorn

    from services.cache.app import create_cache_app

    tracing = None
    if otlp_endpoint:
        from observability import Tracing

        tracing = Tracing("interlock-cache", otlp_endpoint=otlp_endpoint)
    uvicorn.run(create_cache_app(dim, max_entries, tracing), host=host, port=port, log_level="warning")
