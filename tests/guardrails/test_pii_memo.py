"""The PII guard remembers the findings of texts it has seen, per caller scope: a chat's system prompt and history
come back every turn and are not analysed again, and one tenant's texts never answer another's."""

from __future__ import annotations

import pytest

from guardrails import GuardContext
from guardrails._pii import PresidioPIIGuard
from guardrails.config import PIIGuardConfig

SYSTEM = "You are the assistant of Dr. Maria Gonzalez's clinic at 14 Elm Street, Denver. Call 303-555-0147."


@pytest.fixture
def fresh():
    """Loaded guards with the default settings (the analysis in a worker process), stopped after the test."""
    guards: list[PresidioPIIGuard] = []

    def make(**settings) -> PresidioPIIGuard:
        guards.append(guard := PresidioPIIGuard(PIIGuardConfig(**settings)))
        guard.load()
        return guard

    yield make
    for guard in guards:
        guard.close()


async def test_when_a_caller_sends_the_same_text_again_then_its_findings_come_from_the_memo(fresh):
    guard = fresh()
    first = await guard.check(SYSTEM, GuardContext(scope="key:a"))
    again = await guard.check(SYSTEM, GuardContext(scope="key:a"))
    assert {f.type for f in first.findings} >= {"PERSON", "PHONE_NUMBER"}
    assert again.findings == first.findings and again.score == first.score
    assert (guard.memo.hits, guard.memo.misses) == (1, 1)


async def test_when_another_tenant_sends_the_same_text_then_it_is_analysed_for_that_tenant(fresh):
    guard = fresh()
    await guard.check(SYSTEM, GuardContext(scope="key:a"))
    other = await guard.check(SYSTEM, GuardContext(scope="key:b"))
    assert other.findings and (guard.memo.hits, guard.memo.misses) == (0, 2)


async def test_when_a_caller_has_no_scope_or_the_memo_is_off_then_nothing_is_remembered(fresh):
    unscoped = fresh()
    off = fresh(memo_entries=0)
    for _ in range(2):
        await unscoped.check(SYSTEM, GuardContext())
        await off.check(SYSTEM, GuardContext(scope="key:a"))
    assert unscoped.memo.hits == off.memo.hits == 0


async def test_when_the_memo_is_full_then_the_least_recently_used_text_is_analysed_again(fresh):
    guard = fresh(memo_entries=2)
    ctx = GuardContext(scope="key:a")
    for text in (SYSTEM, "Ana Lima lives in Paris.", SYSTEM, "Call Bob at 212-555-0199.", "Ana Lima lives in Paris."):
        await guard.check(text, ctx)
    assert (guard.memo.hits, guard.memo.misses) == (1, 4)
