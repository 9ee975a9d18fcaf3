"""The secrets guard: credentials that must never reach a model API.

Provider key formats are data: each entry is ``TYPE: (regex, score)``; the span reported is group 1 when the
pattern has one (a password inside a URL), else the whole match. Adding a provider is one line.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from guardrails.types import Finding, GuardContext, GuardResult

SECRET_PATTERNS: dict[str, tuple[str, float]] = {
    "ANTHROPIC_API_KEY": (r"\bsk-ant-(?:api\d\d-)?[A-Za-z0-9_-]{20,}", 0.99),
    "OPENAI_API_KEY": (r"\bsk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}", 0.95),
    "AWS_ACCESS_KEY_ID": (r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b", 0.95),
    "AWS_SECRET_ACCESS_KEY": (r"(?i:aws.{0,20}secret.{0,20}?)[=:\"'\s]+([A-Za-z0-9/+=]{40})\b", 0.9),
    "GITHUB_TOKEN": (r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b", 0.99),
    "GITLAB_TOKEN": (r"\bglpat-[A-Za-z0-9_-]{20,}\b", 0.99),
    "GOOGLE_API_KEY": (r"\bAIza[0-9A-Za-z_-]{35}\b", 0.95),
    "SLACK_TOKEN": (r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b", 0.95),
    "STRIPE_KEY": (r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}\b", 0.95),
    "HUGGINGFACE_TOKEN": (r"\bhf_[A-Za-z0-9]{30,}\b", 0.95),
    "AZURE_STORAGE_KEY": (r"(?i:AccountKey=)([A-Za-z0-9/+]{80,}={0,2})", 0.95),
    "PRIVATE_KEY": (
        r"-----BEGIN [A-Z ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY(?: BLOCK)?-----|\Z)",
        1.0,
    ),
    "JWT": (r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}", 0.95),
    "BEARER_TOKEN": (r"(?i:\bbearer\s+)([A-Za-z0-9._~+/-]{20,}=*)", 0.85),
    "URL_PASSWORD": (r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]+:([^\s@/]+)@", 0.95),
    "PASSWORD": (r"(?i:\b(?:password|passwd|pwd|secret|api[_-]?key)\s*[=:]\s*[\"']?)([^\s\"']{6,})", 0.7),
}
_COMPILED = [(t, re.compile(p), s) for t, (p, s) in SECRET_PATTERNS.items()]
#: Texts longer than this are scanned off the event loop (~0.35 µs of regex per character here: 4,000 characters
#: hold it ~1.4 ms): in the guard worker processes when there are some (``GuardContext.offload``), since ``re``
#: holds the GIL and a thread would delay the loop as much; else, past ``THREAD_CHARS``, in a worker thread.
INLINE_CHARS = 4_000
THREAD_CHARS = 20_000


def find_patterns(guard: str, compiled: list[tuple[str, re.Pattern[str], float]], text: str) -> list[Finding]:
    out = []
    for type_, pattern, score in compiled:
        for m in pattern.finditer(text):
            start, end = m.span(1 if pattern.groups else 0)
            if end > start:
                out.append(Finding(guard, type_, start, end, score))
    return out


async def scan_patterns(
    guard: str, compiled: list[tuple[str, re.Pattern[str], float]], text: str, ctx: GuardContext
) -> list[Finding]:
    """``find_patterns`` where it costs the event loop least (``INLINE_CHARS``)."""
    if len(text) > INLINE_CHARS and ctx.offload is not None:
        return await ctx.offload(find_patterns, guard, compiled, text)  # compiled patterns pickle as their source
    if len(text) > THREAD_CHARS:
        return await asyncio.to_thread(find_patterns, guard, compiled, text)
    return find_patterns(guard, compiled, text)  # microseconds for a prompt: cheaper than any hop


class SecretsGuard:
    """API keys of common providers, private keys, JWT and bearer tokens, passwords in URLs and assignments."""

    name = "secrets"
    default_threshold = 0.5

    def __init__(self, settings: Any = None) -> None:
        extra = getattr(settings, "patterns", None) or {}
        self._compiled = _COMPILED + [(t, re.compile(p), 0.9) for t, p in extra.items()]

    def load(self) -> None:
        pass

    def close(self) -> None:
        pass

    async def check(self, text: str, ctx: GuardContext) -> GuardResult:
        findings = await scan_patterns(self.name, self._compiled, text, ctx)
        return GuardResult(findings, max((f.score for f in findings), default=0.0))
