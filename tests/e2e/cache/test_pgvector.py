"""The semantic index in PostgreSQL + pgvector (``pgserver`` bundles both), shared by two gateway processes."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator

import httpx
import pytest

from interlock.emulator import EmulatorServer
from tests.e2e.cache.conftest import ADMIN, KEYS, ask, until
from tests.e2e.cache.test_verifier import vetoed
from tests.support.gateway import model
from tests.support.processes import GatewayProcess

pgserver = pytest.importorskip("pgserver", reason="pgserver (PostgreSQL 16 + pgvector from PyPI) is not installed")


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A private PostgreSQL with pgvector; a libpq URL (unix socket)."""
    server = pgserver.get_server(tempfile.mkdtemp(prefix="interlock-pgvector-"), cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


def config(replica: EmulatorServer, postgres: str, **cache: object) -> dict:
    sql = postgres.replace("postgresql://postgres:@/", "postgresql+psycopg://postgres@/")
    return {
        "models": [model("m", replica.url, cache={"scope": "key", "semantic": {"enabled": True}, **cache})],
        "database": {"url": sql},
        "cache": {"semantic_backend": "pgvector", "postgres_url": postgres},
        "access": {
            "require_keys": True,
            "admin_tokens": {ADMIN: "admin"},
            "teams": [{"name": "team-a"}, {"name": "team-b"}],
            "keys": [{"name": n, "key": k, "team": t} for n, (k, t) in KEYS.items()],
        },
    }


def test_when_two_gateways_share_pgvector_then_one_serves_what_the_other_stored(replica, postgres):
    replica.reset()
    cfg = config(replica, postgres)
    with GatewayProcess(cfg, startup_timeout=90) as a, GatewayProcess(cfg, startup_timeout=90) as b:
        first = ask(a.url, "x", "What is the boiling point of water at sea level?")
        assert first.headers["x-interlock-cache"] == "miss"
        # Other words, other process: a semantic hit from the shared index, naming A's request.
        r = until(lambda: ask(b.url, "x", "At sea level, what's the boiling point of water?"), "hit-semantic")
        assert r.headers["x-interlock-cache-source"] == first.headers["x-request-id"]
        assert r.json()["choices"] == first.json()["choices"]
        # A one-word factual swap of a question A stored: B's pair verifier refuses it (it reads both vectors).
        ask(a.url, "x", "Why does smoking cause lung cancer?")
        until(lambda: ask(b.url, "x", "Why does smoking cause lung cancer?"), "hit-semantic")
        assert ask(b.url, "x", "Why does smoking prevent lung cancer?").headers["x-interlock-cache"] == "miss"
        assert vetoed(b.url, "model") == 1
        # Another key sees nothing of it, in either process.
        assert ask(b.url, "y", "What is the boiling point of water at sea level?").headers["x-interlock-cache"] == (
            "miss"
        )
        # Invalidation through one gateway empties the shared index for both.
        cleared = httpx.delete(a.url + "/admin/cache", params={"model": "m", "kind": "semantic"},
                               headers={"authorization": f"Bearer {ADMIN}"})  # fmt: skip
        assert cleared.status_code == 200 and cleared.json()["semantic"] >= 1
        assert ask(b.url, "x", "At sea level, what's the boiling point of water?").headers["x-interlock-cache"] == (
            "miss"
        )


def test_when_postgres_is_down_then_semantic_lookups_are_misses(replica, tmp_path):
    replica.reset()
    cfg = config(replica, "postgresql://postgres@127.0.0.1:1/postgres")
    cfg["database"] = {"url": f"sqlite:///{tmp_path}/gw.db"}
    with GatewayProcess(cfg, startup_timeout=90) as gw:
        for _ in range(2):
            assert ask(gw.url, "x", "Why is the sky blue?").headers["x-interlock-cache"] in ("miss", "hit-exact")
        metrics = httpx.get(gw.url + "/metrics").text
        assert 'interlock_cache_backend_errors_total{backend="postgres"}' in metrics
