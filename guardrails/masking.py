"""Masking with a reverse map (book figure 10-3), and unmasking of answers, whole or streamed.

``MaskMap`` lives for one request: each detected value becomes a typed placeholder (``[PERSON_1]``), the same
value the same placeholder across every message and role of that request. The map is never logged, traced or
recorded: only finding types and offsets leave the request.

``StreamUnmasker`` turns placeholders back into values in a stream of text pieces where a placeholder may be
split across pieces. It holds back only a tail that is still a proper prefix of a *known* placeholder, so the
concatenation of what it emits always equals ``MaskMap.unmask`` of the whole answer, for any chunking (the
property test in tests/guardrails/test_masking.py). A placeholder the model made up is left as it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from guardrails.types import Finding


class MaskMap:
    """value <-> placeholder for one request."""

    __slots__ = ("_counts", "_pattern", "by_placeholder", "by_value")

    def __init__(self) -> None:
        self.by_value: dict[str, str] = {}
        self.by_placeholder: dict[str, str] = {}
        self._counts: dict[str, int] = {}
        self._pattern: re.Pattern[str] | None = None

    def __bool__(self) -> bool:
        return bool(self.by_placeholder)

    def __repr__(self) -> str:  # never show values, even in a debugger's or a traceback's repr
        return f"MaskMap({len(self.by_placeholder)} placeholders)"

    def placeholder(self, value: str, type_: str) -> str:
        found = self.by_value.get(value)
        if found is None:
            n = self._counts[type_] = self._counts.get(type_, 0) + 1
            found = f"[{type_}_{n}]"
            self.by_value[value] = found
            self.by_placeholder[found] = value
            self._pattern = None
        return found

    def mask(self, text: str, findings: Iterable[Finding]) -> str:
        """Replace each finding's span with its placeholder (overlapping spans merged, see ``resolve_overlaps``)."""
        parts: list[str] = []
        pos = 0
        for f in resolve_overlaps(findings):
            parts.append(text[pos : f.start])
            parts.append(self.placeholder(text[f.start : f.end], f.type))
            pos = f.end
        parts.append(text[pos:])
        return "".join(parts)

    @property
    def pattern(self) -> re.Pattern[str]:
        if self._pattern is None:
            keys = sorted(self.by_placeholder, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, keys)) or r"(?!x)x")
        return self._pattern

    def unmask(self, text: str) -> str:
        if not self.by_placeholder or "[" not in text:
            return text
        return self.pattern.sub(lambda m: self.by_placeholder[m.group(0)], text)


def resolve_overlaps(findings: Iterable[Finding]) -> list[Finding]:
    """Non-overlapping findings in text order. Overlapping spans merge into their union (so no part of a value
    is left in clear), typed by the longest member, then the highest score: a whole street address beats the
    house number the NER read as a date, a card number the "1111" inside it."""
    merged: list[Finding] = []
    for f in sorted(findings, key=lambda f: (f.start, -f.end)):
        if f.end <= f.start:
            continue
        if merged and f.start < merged[-1].end:
            last = merged[-1]
            best = max(last, f, key=lambda x: (x.end - x.start, x.score))
            merged[-1] = Finding(best.guard, best.type, last.start, max(last.end, f.end), best.score)
        else:
            merged.append(f)
    return merged


class StreamUnmasker:
    """Unmask a stream of text pieces: ``feed(piece) -> text to emit now``; ``flush()`` at the end."""

    __slots__ = ("_held", "_map")

    def __init__(self, mask_map: MaskMap) -> None:
        self._map = mask_map
        self._held = ""

    def feed(self, piece: str) -> str:
        buf = self._held + piece if self._held else piece
        if "[" not in buf:
            self._held = ""
            return buf
        values = self._map.by_placeholder
        out: list[str] = []
        i = 0
        while True:
            j = buf.find("[", i)
            if j < 0:
                out.append(buf[i:])
                self._held = ""
                break
            out.append(buf[i:j])
            close = buf.find("]", j)
            if close >= 0 and buf[j : close + 1] in values:
                out.append(values[buf[j : close + 1]])
                i = close + 1
                continue
            rest = buf[j:]
            if close < 0 and any(p.startswith(rest) for p in values):
                self._held = rest  # may still become a placeholder: wait for the next piece
                break
            out.append("[")
            i = j + 1
        return "".join(out)

    def flush(self) -> str:
        held, self._held = self._held, ""
        return held

    @property
    def holding(self) -> int:
        """Characters held back right now (for the benchmark and tests)."""
        return len(self._held)
