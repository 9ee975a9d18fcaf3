"""Errors of the intent router. One hierarchy; the gateway translates it to ``gateway.errors`` at one seam.

IntentRouterError
├── DefinitionError       a router definition is invalid; ``param`` names the field (400)
├── RouterNotFound        no router of that name (404)
└── RouterUnavailable     the router service cannot be reached (service mode; the gateway falls back)
"""

from __future__ import annotations


class IntentRouterError(Exception):
    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class DefinitionError(IntentRouterError):
    """The definition cannot be trained or served; ``param`` is the offending field (``intents[2].examples``)."""


class RouterNotFound(IntentRouterError):
    pass


class RouterUnavailable(IntentRouterError):
    pass
