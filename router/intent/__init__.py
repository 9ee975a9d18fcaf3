"""The intent router: what the user wants, decided in milliseconds from one sentence embedding.

    definition = parse_definition({"intents": [...], "out_of_scope": {...}})     # DefinitionError -> 400
    router = train("support", 1, definition, embedder.embed)                      # blocking: run in a thread
    blob = router.head.to_bytes(); Head.from_bytes(blob)                          # what the database stores
    decision = router.decide(vector, text)                                        # Decision(intent, target, ...)

Serving goes through one role, ``IntentRouting`` (``routing.py``): ``LocalRouting`` decides in-process,
``HTTPRouting`` asks the router service (``services/router``). This package never imports ``gateway/``.
"""

from router.intent.context import ContextPlan, ContextTooLong, ModelContext, count_tokens, plan_context
from router.intent.decide import Decision, IntentRouter, train
from router.intent.definition import Human, Intent, OutOfScope, RouterDefinition, Target, Tier, parse_definition
from router.intent.errors import DefinitionError, IntentRouterError, RouterNotFound, RouterUnavailable
from router.intent.head import Head, fit_head
from router.intent.routing import EmbedOne, HTTPRouting, IntentRouting, LocalRouting, user_turn
from router.intent.text import normalise
from router.intent.tiers import difficulty, pick_model

__all__ = [
    "ContextPlan",
    "ContextTooLong",
    "Decision",
    "DefinitionError",
    "EmbedOne",
    "HTTPRouting",
    "Head",
    "Human",
    "Intent",
    "IntentRouter",
    "IntentRouterError",
    "IntentRouting",
    "LocalRouting",
    "ModelContext",
    "OutOfScope",
    "RouterDefinition",
    "RouterNotFound",
    "RouterUnavailable",
    "Target",
    "Tier",
    "count_tokens",
    "difficulty",
    "fit_head",
    "normalise",
    "parse_definition",
    "pick_model",
    "plan_context",
    "train",
    "user_turn",
]
