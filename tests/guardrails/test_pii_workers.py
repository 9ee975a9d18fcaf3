"""The PII guard's worker processes (``pii.workers``) find what the in-process analysis finds, and a stopped pool
fails the guard (so the policy's ``on_error`` decides) instead of hanging or answering nothing."""

from __future__ import annotations

import pytest

from guardrails import GuardContext, GuardFailed
from guardrails._pii import PresidioPIIGuard
from guardrails.config import PIIGuardConfig

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
