"""The guardrails library's errors. The gateway translates them to ``gateway.errors`` at one seam.

GuardrailError
├── GuardConfigError      a policy or guard setting is invalid (names the field)
├── GuardFailed           a guard raised or its model is missing (``guard`` names it); on_error decides
│   └── GuardTimeout      a guard did not answer in time
└── GuardBlocked          a policy blocked the text (``guard``, ``type``)
"""

from __future__ import annotations


class GuardrailError(Exception):
    def __init__(self, message: str, *, guard: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.guard = guard


class GuardConfigError(GuardrailError):
    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class GuardFailed(GuardrailError):
    pass


class GuardTimeout(GuardFailed):
    pass


class GuardBlocked(GuardrailError):
    def __init__(self, message: str, *, guard: str, type: str) -> None:
        super().__init__(message, guard=guard)
        self.type = type
