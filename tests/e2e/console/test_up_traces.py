"""``interlock up`` out of the box: the console is reachable with the admin token it prints, a request just sent
opens with its span waterfall (the embedded settings turn the trace store on), and implicit feedback is read."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator

import httpx
import pytest

from tests.support.polling import eventually
from tests.support.servers import free_port


@pytest.fixture(scope="module")
def up(tmp_path_factory) -> Iterator[tuple[str, str]]:
    """``interlock up --emulator`` as a user runs it; yields the gateway's URL and the admin token it printed."""
    folder = tmp_path_factory.mktemp("up")
    port, worker_port = free_port(), free_port()
    command = [sys.executable, "-m", "interlock.cli", "up", "--emulator", "--port", str(port),
               "--worker-port", str(worker_port), "--database-url", f"sqlite:///{folder}/up.db"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "INTERLOCK_UP_ADMIN_TOKEN"}
    proc = subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    printed: list[str] = []  # read by a thread: a readline here would block past any deadline
    threading.Thread(target=_collect, args=(proc, printed), daemon=True).start()
    try:
        eventually(lambda: any(line.startswith("console:") for line in printed) or proc.poll() is not None, 60)
        console = next((line for line in printed if line.startswith("console:")), None)
        assert console is not None, "".join(printed)
        token = re.search(r"admin token: (\S+);", console).group(1)
        url = f"http://127.0.0.1:{port}"
        assert eventually(lambda: _healthy(url), timeout=30), "".join(printed)
        yield url, token
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C, as a user stops it
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _collect(proc: subprocess.Popen, printed: list[str]) -> None:
    for line in proc.stdout:
        printed.append(line)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/health").status_code == 200
    except httpx.HTTPError:
        return False


def test_when_up_has_served_a_request_then_the_console_opens_it_with_its_spans(up):
    url, token = up
    admin = {"authorization": f"Bearer {token}"}
    r = httpx.post(
        url + "/v1/chat/completions", json={"model": "smollm2", "messages": [{"role": "user", "content": "Hi!"}]}
    )
    assert r.status_code == 200
    rid = r.headers["x-interlock-request-id"]
    page = httpx.get(url + "/ui/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert httpx.get(url + f"/admin/console/requests/{rid}").status_code == 401  # the token is needed

    def detail():
        found = httpx.get(url + f"/admin/console/requests/{rid}", headers=admin)
        return found.status_code == 200 and len(found.json()["spans"]) >= 4 and found.json()

    found = eventually(detail, timeout=20)
    assert found, httpx.get(url + f"/admin/console/requests/{rid}", headers=admin).text
    names = {s["name"] for s in found["spans"]}
    assert "chat smollm2" in names and {"interlock.step authenticate", "interlock.step resolve_model"} <= names
    assert {s["request_id"] for s in found["spans"]} == {rid}
    listed = httpx.get(url + "/admin/console/requests", headers=admin).json()
    assert rid in str(listed)


def test_when_up_sees_a_regeneration_then_the_console_lists_the_signal(up):
    url, token = up
    body = {"model": "smollm2", "messages": [{"role": "user", "content": "Tell me a joke about gateways."}]}
    first = httpx.post(url + "/v1/chat/completions", json=body)
    assert httpx.post(url + "/v1/chat/completions", json=body).status_code == 200  # the same question again
    rid = first.headers["x-interlock-request-id"]
    admin = {"authorization": f"Bearer {token}"}

    def listed():
        rows = httpx.get(url + "/admin/console/feedback", params={"kind": "regeneration"}, headers=admin).json()
        return [r for r in rows if r["request_id"] == rid]

    assert eventually(listed, timeout=15)
