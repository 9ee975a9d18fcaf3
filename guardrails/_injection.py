"""Prompt injection and jailbreak detector: a small linear model over the shared MiniLM embedding, hashed
character n-grams and rule flags (``_features.py``), trained by ``guardrails/training/train_injection.py``.

Loading and scoring are ``_linear_guard.LinearModelGuard``'s (shared with the toxicity scorer). The shipped
threshold was chosen on held-out data (see the README).
"""

from __future__ import annotations

import re

from guardrails._linear_guard import LinearModelGuard

#: Rule flags: phrasing typical of attacks. They are features (weighted by training), not verdicts.
INJECTION_RULES: list[tuple[str, re.Pattern[str]]] = [
    (
        "ignore_previous",
        re.compile(
            r"(?i)\b(ignore|disregard|forget|override|bypass)\b.{0,40}\b(previous|prior|above|earlier|all|your|"
            r"initial|system)\b.{0,30}\b(instructions?|prompts?|rules?|directives?|guidelines|context)"
        ),
    ),
    ("new_instructions", re.compile(r"(?i)\b(new|updated|real|actual)\s+(instructions?|task|rules?)\s*[:\-]")),
    (
        "reveal_prompt",
        re.compile(
            r"(?i)\b(reveal|show|print|repeat|output|leak)\b.{0,30}\b(system|initial|hidden|secret)\b.{0,15}"
            r"\b(prompt|instructions?|key|password)"
        ),
    ),
    (
        "roleplay_unrestricted",
        re.compile(
            r"(?i)\b(DAN|do anything now|jailbr[eo]ak|developer mode|unfiltered|uncensored|"
            r"no (moral|ethical) (guidelines|restrictions))\b"
        ),
    ),
    (
        "pretend_no_rules",
        re.compile(
            r"(?i)\b(pretend|act as if|imagine|from now on)\b.{0,60}\b(no|without|free of|not bound by)\b.{0,20}"
            r"\b(rules|restrictions|limits|filters|guidelines|policies)"
        ),
    ),
    ("you_are_now", re.compile(r"(?i)\byou are (now|no longer)\b|\bfrom now on,? you\b")),
    ("stay_in_character", re.compile(r"(?i)\b(stay in character|never break character|remain in character)\b")),
    (
        "fake_system",
        re.compile(r"(?i)(^|\n)\s*(\[?system\]?|###\s*(system|instruction)|<\|?(system|im_start)\|?>)\s*:?"),
    ),
    (
        "encoded_payload",
        re.compile(r"(?i)\b(base64|rot13|hex)\b.{0,40}\b(decode|encoded|follow|execute)\b|[A-Za-z0-9+/]{60,}={0,2}"),
    ),
    (
        "exfiltrate",
        re.compile(
            r"(?i)\b(send|post|forward|email|upload)\b.{0,40}"
            r"\b(password|credentials|api key|token|cookies?|conversation)\b.{0,30}\b(to|at)\b"
        ),
    ),
]


class InjectionGuard(LinearModelGuard):
    """Scores a text for prompt injection / jailbreak in [0, 1]; a finding spans the whole text when it fires."""

    name = "injection"
    model_file = "injection.npz"
    fast_file = "injection_fast.npz"  # trained by guardrails/training/train_fast.py
    finding_type = "PROMPT_INJECTION"
    rules = INJECTION_RULES
