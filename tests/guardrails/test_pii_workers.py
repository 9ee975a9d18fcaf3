"""The PII guard's worker processes (``pii.workers``) find what the in-process analysis finds, and a stopped pool
fails the guard (so the policy's ``on_error`` decides) instead of hanging or answering nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from guardrails import GuardContext, GuardFailed, Guardrails, GuardrailsConfig, GuardRule
from guardrails._pii import PresidioPIIGuard
from guardrails.config import PIIGuardConfig
from tests.support.polling import eventually

TEXTS = [
    "Hi, I am Maria Gonzalez from 14 Elm Street in Denver; call 303-555-0147 or mail maria@example.org.",
    "my ssn is 536-80-4398 and my card 4111 1111 1111 1111",
    "How do I kill a Python process on Linux?",
]


@pytest.fixture(scope="module")
def guards():
    here, pooled = PresidioPIIGuard(PIIGuardConfig(workers=0)), PresidioPIIGuard(PIIGuardConfig(workers=1))
    here.load()
    pooled.load()
    yield here, pooled
    pooled.close()


@pytest.mark.parametrize("text", TEXTS)
async def test_when_the_analysis_runs_in_a_worker_process_then_it_finds_what_it_finds_in_this_one(guards, text):
    here, pooled = guards
    assert pooled.pool is not None and here.pool is None
    assert (await pooled.check(text, GuardContext())) == (await here.check(text, GuardContext()))


async def test_when_the_workers_are_stopped_then_the_guard_fails():
    guard = PresidioPIIGuard(PIIGuardConfig(workers=1))
    guard.load()
    guard.close()
    with pytest.raises(GuardFailed, match="stopped"):
        await guard.check(TEXTS[0], GuardContext())


LONG = "lorem ipsum dolor sit amet " * 200 + "deploy with sk-proj-abcdefghijklmnopqrstuvwxyz012345 for Project Falcon"


@pytest.mark.parametrize(("text", "jobs"), [(LONG, 2), (LONG[-80:], 0)])
async def test_when_a_text_is_long_then_secrets_and_keywords_scan_it_in_the_worker_and_find_the_same(text, jobs):
    settings = {"enabled": True, "keywords": {"keywords": ["Project Falcon"]}}
    here = Guardrails(GuardrailsConfig(**settings, pii={"workers": 0}))
    pooled = Guardrails(GuardrailsConfig(**settings))
    pooled.load()
    try:
        rules = {"secrets": GuardRule(action="mask"), "keywords": GuardRule(action="mask")}
        found = await pooled.scan([text], rules, GuardContext())
        assert pooled.guards["pii"].pool.jobs == jobs  # a regex over a prompt is cheaper than the hop
        assert found.findings == (await here.scan([text], rules, GuardContext())).findings
        assert {f.type for f, _ in found.findings[0]} == {"OPENAI_API_KEY", "KEYWORD"}
    finally:
        pooled.close()


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_when_the_process_owning_the_workers_is_killed_then_they_exit_too():
    """A gateway killed outright (OOM killer) never shuts its pool down: its worker must not stay behind."""
    code = (
        "from guardrails import Guardrails, GuardrailsConfig\n"
        "g = Guardrails(GuardrailsConfig(enabled=True))\n"
        "g.load()\n"
        "print(g.health()['pii_workers']['alive'][0], flush=True)\n"
        "import time; time.sleep(300)\n"
    )
    owner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(owner.stdout.readline())
        assert _running(pid)
    finally:
        owner.kill()
        owner.wait()
        owner.stdout.close()
    assert eventually(lambda: not _running(pid), timeout=10)
