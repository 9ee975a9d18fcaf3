"""Admin-defined keywords and regexes (project code names, internal hostnames): exact words, case-insensitive,
on word boundaries; regexes under a name that becomes the finding's type (``PROJECT_CODE``)."""

from __future__ import annotations

import re
from typing import Any

from guardrails._secrets import scan_patterns
from guardrails.errors import GuardConfigError
from guardrails.types import GuardContext, GuardResult


def compile_keywords(keywords: list[str], regexes: dict[str, str]) -> list[tuple[str, re.Pattern[str], float]]:
    compiled = []
    if keywords:
        alternation = "|".join(re.escape(k) for k in sorted(keywords, key=len, reverse=True))
        compiled.append(("KEYWORD", re.compile(rf"(?<!\w)(?:{alternation})(?!\w)", re.IGNORECASE), 1.0))
    for name, pattern in regexes.items():
        try:
            compiled.append((name.upper(), re.compile(pattern), 1.0))
        except re.error as exc:
            raise GuardConfigError(f"keywords.regexes.{name}: not a valid regex ({exc})", field=name) from exc
    return compiled


class KeywordGuard:
    """``settings``: ``guardrails.config.KeywordsConfig`` (``keywords: [...]``, ``regexes: {NAME: pattern}``)."""

    name = "keywords"
    default_threshold = 0.5

    def __init__(self, settings: Any = None) -> None:
        self._compiled = compile_keywords(
            list(getattr(settings, "keywords", []) or []), dict(getattr(settings, "regexes", {}) or {})
        )

    def load(self) -> None:
        pass

    def close(self) -> None:
        pass

    async def check(self, text: str, ctx: GuardContext) -> GuardResult:
        if not self._compiled:
            return GuardResult(score=0.0)
        findings = await scan_patterns(self.name, self._compiled, text, ctx)
        return GuardResult(findings, 1.0 if findings else 0.0)
