"""``SpanScan``: a stream's span guards (pii, secrets, keywords) read each part of the answer about once.

The window a stream is judged on moves a chunk at a time, so judging all of it again for every chunk runs the PII
detector (spaCy, Presidio) over the same few hundred characters dozens of times. Span guards report values with
offsets, and a value ending in the new text is at most ``longest_value_chars`` long: so each judgement scans only
the text since the last one plus that many characters before it, and keeps the findings of earlier scans that
start before that overlap. Whole-text scorers (refusal, toxicity) still judge the whole window.
"""

from __future__ import annotations

from guardrails import Action, Finding
from guardrails.output import MASKING_GUARDS, OutputVerdict
from guardrails.types import ACTION_RANK


class SpanScan:
    __slots__ = ("_found", "_scanned_to", "overlap", "rules")

    def __init__(self, rules: frozenset[str], overlap: int) -> None:
        #: The span guards among a policy's partial rules; the rest judge the whole window.
        self.rules = rules & MASKING_GUARDS
        self.overlap = overlap
        self._found: list[tuple[Finding, Action]] = []  # absolute offsets in the answer
        self._scanned_to = 0

    def region(self, start: int, end: int) -> int:
        """Where the next scan of the window ``[start, end)`` begins (absolute)."""
        return max(start, min(self._scanned_to, end) - self.overlap)

    def merge(self, scan: OutputVerdict, scan_from: int, start: int, end: int, rest: OutputVerdict) -> OutputVerdict:
        """The window's verdict (offsets from ``start``): earlier findings that start before ``scan_from``, all of
        the new scan's, and the other rules' ``rest``. A new finding overlapping an earlier one is kept (the piece of
        a value the overlap cut, or another type over it, a URL inside an email): masking takes their union, and
        dropping it could let a value through."""
        kept = [(f, a) for f, a in self._found if f.start < scan_from and f.end > start]
        new = [(Finding(f.guard, f.type, f.start + scan_from, f.end + scan_from, f.score), a) for f, a in scan.findings]
        self._found = kept + new
        self._scanned_to = end
        out = OutputVerdict(scores=rest.scores | scan.scores, failed=rest.failed | scan.failed)
        for f, a in rest.findings:
            _take(out, f, a)
        for f, a in self._found:
            _take(out, Finding(f.guard, f.type, f.start - start, f.end - start, f.score), a)
        return out


def _take(verdict: OutputVerdict, finding: Finding, action: Action) -> None:
    verdict.findings.append((finding, action))
    if ACTION_RANK[action] > ACTION_RANK[verdict.action]:
        verdict.action, verdict.decided_by = action, finding
