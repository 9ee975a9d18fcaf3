"""A gateway process stopped under load loses no record of a request it served.

SIGTERM: the graceful shutdown finishes requests in flight and writes what the record writer still holds.
SIGKILL: nothing runs at exit, so records must already be on disk: the writer's journal
(``database.journal_dir``). The gateway's recorder process ships it when the gateway alone was killed (an
OOM kill); when both died (the container was killed) the next gateway started on the folder replays it.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import httpx
import pytest

from tests.e2e.limits.conftest import chat_body, config, cost, create_key, eventually, gateways, records
from tests.support.processes import GatewayProcess

CLIENTS = 6
#: Each request takes about 3 x TPOT_MS in the emulator, so several are always in flight.
MAX_TOKENS = 4


class Load:
    """``CLIENTS`` threads calling ``priced`` in a loop until told to stop or the gateway goes away."""

    def __init__(self, gw: GatewayProcess, key: str) -> None:
        self.gw, self.key = gw, key
        self.served: dict[str, float] = {}  # request id -> expected cost, for every 200 received
        self.statuses: list[int] = []
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(CLIENTS)]

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self._threads:
            t.join(15)

    def _run(self) -> None:
        body = chat_body("priced", max_tokens=MAX_TOKENS)
        with httpx.Client(timeout=10, headers={"authorization": f"Bearer {self.key}"}) as client:
            while not self.stop.is_set():
                try:
                    r = client.post(self.gw.url + "/v1/chat/completions", json=body)
                except httpx.HTTPError:
                    return  # the gateway stopped listening
                with self._lock:
                    self.statuses.append(r.status_code)
                    if r.status_code == 200:
                        self.served[r.headers["x-request-id"]] = cost(r.json()["usage"])

    def count(self) -> int:
        with self._lock:
            return len(self.served)


def check_every_served_request_is_recorded(database_url: str, key_id: str, served: dict[str, float]) -> None:
    rows = {r["id"]: r for r in records(database_url, key_id)}
    missing = sorted(set(served) - set(rows))
    assert not missing, f"{len(missing)} of {len(served)} served requests have no record"
    assert {i: rows[i]["cost_usd"] for i in served} == pytest.approx(served, rel=1e-9)
    assert all(rows[i]["status"] == 200 for i in served)
    spent = sum(r["cost_usd"] for r in rows.values())
    assert spent == pytest.approx(sum(served.values()), rel=1e-9)


def run_until_signal(gw: GatewayProcess, key: str, stop: Any) -> dict[str, float]:
    """Load the gateway, stop it with ``stop()`` while requests are in flight; return what was served."""
    with Load(gw, key) as load:
        assert eventually(lambda: load.count() >= 30, timeout=15), load.statuses
        stop()
    # Refusals would mean the load itself went wrong; a 503 from a server shutting down is fair.
    assert load.served and set(load.statuses) <= {200, 503}, sorted(set(load.statuses))
    return load.served


def test_when_a_gateway_gets_sigterm_under_load_then_every_served_request_has_its_record(
    emulator, postgres_url, redis_url
):
    cfg = config(emulator, database_url=postgres_url, redis_url=redis_url, database={"flush_interval": 2.0})
    with gateways(cfg) as (gw,):
        key = create_key(gw, limits={"budget_daily_usd": 100.0, "rpm": 100_000})
        served = run_until_signal(gw, key["key"], gw.stop)
        # Uvicorn re-raises the signal after its graceful shutdown, so the exit status is -SIGTERM.
        assert gw.proc.returncode in (0, -signal.SIGTERM), gw.output()
    check_every_served_request_is_recorded(postgres_url, key["id"], served)


def test_when_a_gateway_is_killed_under_load_then_its_recorder_ships_every_record(emulator, postgres_url, redis_url):
    # A long interval: the recorder has shipped nearly nothing when the gateway dies.
    cfg = config(emulator, database_url=postgres_url, redis_url=redis_url, database={"flush_interval": 5.0})
    with gateways(cfg) as (gw,):
        key = create_key(gw, limits={"budget_daily_usd": 100.0})
        (recorder,) = gw.children()
        served = run_until_signal(gw, key["key"], gw.kill)
        eventually(lambda: len(records(postgres_url, key["id"])) >= len(served), timeout=10, interval=0.1)
        check_every_served_request_is_recorded(postgres_url, key["id"], served)
        # Its work done, the recorder leaves.
        assert eventually(lambda: not os.path.exists(f"/proc/{recorder}"), timeout=10, interval=0.1)


def test_when_a_gateway_and_its_recorder_are_killed_under_load_then_the_next_one_replays_its_journal(
    emulator, postgres_url, redis_url, tmp_path
):
    journal = {"journal_dir": str(tmp_path / "journal"), "flush_interval": 5.0}
    cfg = config(emulator, database_url=postgres_url, redis_url=redis_url, database=journal)
    with gateways(cfg) as (gw,):
        key = create_key(gw, limits={"budget_daily_usd": 100.0})
        served = run_until_signal(gw, key["key"], gw.kill_all)
    # The premise: the kill lost records that only the journal still holds.
    assert len(records(postgres_url, key["id"])) < len(served)
    with gateways(cfg):
        eventually(lambda: len(records(postgres_url, key["id"])) >= len(served), timeout=10, interval=0.1)
        check_every_served_request_is_recorded(postgres_url, key["id"], served)
