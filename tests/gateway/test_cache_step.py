"""What the cache step reads from other steps: the PII guard's findings keep a request out of shared scopes."""

from __future__ import annotations

import pytest

from gateway.cache_step import pii_found
from gateway.types import RequestContext


@pytest.mark.parametrize(
    ("notes", "found"),
    [
        ({}, False),
        ({"pii_found": True}, True),
        ({"guardrails": {"action": "mask", "findings": [{"guard": "pii", "type": "EMAIL_ADDRESS"}]}}, True),
        ({"guardrails": {"action": "allow", "findings": [{"guard": "secrets", "type": "API_KEY"}]}}, False),
        ({"guardrails": {"action": "allow", "findings": []}}, False),
    ],
)
def test_when_the_pii_guard_reports_findings_then_the_cache_step_sees_personal_data(notes, found):
    ctx = RequestContext("r1", "chat", {}, "m", notes=notes)
    assert pii_found(ctx) is found
