"""A bounded memo of one guard's findings per text, scoped to a tenant.

A chat resends its system prompt and its history with every turn, so without a memo the PII guard runs spaCy
over the same texts again each time (turn k analyses k messages). The memo keeps, for a text it has seen,
only what the guard found in it (offsets, types, scores: never values) under a keyed hash of the text, so
neither the text nor an unkeyed digest of it stays in memory. Entries are scoped: a caller's scope (its key,
else its team) is part of the key, so one tenant never benefits from, or can time, another's texts. Callers
without a scope are never memoised. Access happens on the event loop only (no lock).
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict

from guardrails.types import Finding


class FindingsMemo:
    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[bytes, tuple[Finding, ...]] = OrderedDict()
        self._key = os.urandom(32)  # per process: digests are meaningless outside it
        #: Lookups answered from the memo and lookups that ran the guard, for tests and the benchmark.
        self.hits = 0
        self.misses = 0

    def _digest(self, scope: str, text: str) -> bytes:
        h = hashlib.blake2b(key=self._key, digest_size=20)
        h.update(scope.encode())
        h.update(b"\0")
        h.update(text.encode())
        return h.digest()

    def get(self, scope: str | None, text: str) -> list[Finding] | None:
        if scope is None or self.max_entries <= 0:
            return None
        found = self._entries.get(key := self._digest(scope, text))
        if found is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return list(found)

    def put(self, scope: str | None, text: str, findings: list[Finding]) -> None:
        if scope is None or self.max_entries <= 0:
            return
        self._entries[self._digest(scope, text)] = tuple(findings)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
