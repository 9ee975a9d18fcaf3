"""Output ``mask``: what the model wrote that a span guard flags is replaced by a redaction (``[PHONE_NUMBER]``).

Runs on the answer as the upstream sent it, before the input side's unmasking, so the placeholders of the
request's own ``MaskMap`` still turn back into the user's values, and the user's values are never re-detected
and hidden. Two rules keep a redaction from ever being unmasked into a value:

- a redaction is one bracketed label with no other bracket (``[{type}]`` by default, ``output_actions.redaction``),
  and one that renders as a placeholder of the request (``[TICKET_2]`` from a type ``TICKET_2``) becomes
  ``[REDACTED]``; so no placeholder can form across a redaction and its neighbours;
- findings are carved around the request's placeholders: a NER span over ``[PERSON_1] Smith`` masks ``Smith``.

``StreamRedactor`` does the same on a stream, holding back the last ``hold_chars`` characters so that a value split
across chunks is recognised whole before any of it is sent (values longer than that may lose their start).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

from guardrails.masking import resolve_overlaps
from guardrails.types import Finding

FALLBACK = "[REDACTED]"
_TEMPLATE = re.compile(r"\[[^\[\]]+\]")
_NUMBERED = re.compile(r".*_\d+\]")


def check_template(template: str) -> str:
    """``ValueError`` unless ``template`` is one bracketed label whose only field is ``{type}``."""
    if not _TEMPLATE.fullmatch(template):
        raise ValueError("must be one bracketed label such as '[{type}]' or '[REDACTED]', with no other bracket")
    try:
        rendered = template.format(type="X")
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"only the field {{type}} may be used ({exc})") from None
    if "{type}" not in template and _NUMBERED.fullmatch(rendered):
        raise ValueError("must not look like a numbered placeholder ('[NAME_1]')")
    return template


def render(template: str, type_: str, placeholders: Collection[str] = ()) -> str:
    out = template.format(type=type_)
    return FALLBACK if out in placeholders or _NUMBERED.fullmatch(out) else out


def carve(text: str, findings: Iterable[Finding], placeholders: Collection[str], offset: int = 0) -> list[Finding]:
    """``findings`` (overlaps merged) minus the spans of the request's placeholders in ``text`` (which starts at
    ``offset`` of the answer); pieces left with no letter or digit are dropped (the ", " between two placeholders
    is nobody's data)."""
    merged = resolve_overlaps(findings)
    if not placeholders or "[" not in text:
        return merged
    holes = [(m.start() + offset, m.end() + offset) for m in _pattern(placeholders).finditer(text)]
    out: list[Finding] = []
    for f in merged:
        start = f.start
        for hs, he in holes:
            if he <= start or hs >= f.end:
                continue
            _keep(out, text, offset, f, start, hs)
            start = he
        _keep(out, text, offset, f, start, f.end)
    return out


def _keep(out: list[Finding], text: str, offset: int, f: Finding, start: int, end: int) -> None:
    if start >= offset:  # trim the spaces a cut leaves at either end ("[PERSON_1] Smith" -> "Smith")
        seen = text[start - offset : end - offset]
        if not any(c.isalnum() for c in seen):
            return
        start, end = start + len(seen) - len(seen.lstrip()), end - len(seen) + len(seen.rstrip())
    if end > start:
        out.append(Finding(f.guard, f.type, start, end, f.score))


def _pattern(placeholders: Collection[str]) -> re.Pattern[str]:
    return re.compile("|".join(map(re.escape, sorted(placeholders, key=len, reverse=True))))


def redact(text: str, findings: Iterable[Finding], template: str, placeholders: Collection[str] = ()) -> str:
    """``text`` with each finding replaced by its redaction (the request's placeholders kept)."""
    parts: list[str] = []
    pos = 0
    for f in carve(text, findings, placeholders):
        parts.append(text[pos : f.start])
        parts.append(render(template, f.type, placeholders))
        pos = f.end
    parts.append(text[pos:])
    return "".join(parts)


class StreamRedactor:
    """One streamed text: ``add(piece)`` as it arrives, ``emit(findings, base, upto)`` when text may go out.

    Offsets are absolute (from the start of the answer); ``findings`` are those of a scan of the answer's text from
    ``base`` on (a window that reaches back before what is still unsent). ``emit`` returns the redacted text that
    can go now: up to ``upto`` (what the window's other rules let through) but never within ``hold_chars`` of the
    end of what has arrived, and never the start of a value that ends later. ``final`` (the answer is complete)
    lifts the hold-back."""

    __slots__ = ("_done", "_held", "_placeholders", "_redacted_to", "_template", "hold_chars", "received")

    def __init__(self, template: str, hold_chars: int, placeholders: Collection[str] = ()) -> None:
        self._template = template
        self._placeholders = placeholders
        self.hold_chars = hold_chars
        self._held = ""  # text from ``_done`` to ``received``
        self._done = 0  # absolute offset up to which text has been emitted or redacted
        self._redacted_to = -1  # end of the last redaction emitted
        self.received = 0

    def add(self, piece: str) -> None:
        self._held += piece
        self.received += len(piece)

    @property
    def pending(self) -> int:
        """Characters arrived but not yet emitted."""
        return self.received - self._done

    def emit(self, findings: Iterable[Finding], base: int, upto: int, *, final: bool = False) -> str:
        cut = min(upto, self.received) if final else min(upto, self.received - self.hold_chars)
        pos = self._done
        if cut <= pos and not final:
            return ""
        text = self._held
        window = (Finding(f.guard, f.type, f.start + base, f.end + base, f.score) for f in findings)
        out: list[str] = []
        for f in carve(text, window, self._placeholders, offset=pos):
            if f.end <= pos:
                continue
            if f.start >= cut:
                break
            if f.start < pos:  # reaches back into sent text: the value grew, or started before the hold-back
                if self._redacted_to != pos:
                    out.append(render(self._template, f.type, self._placeholders))
            elif f.end > cut:  # a value that may still grow: hold it whole
                out.append(text[pos - self._done : f.start - self._done])
                pos = f.start
                break
            else:
                out.append(text[pos - self._done : f.start - self._done])
                out.append(render(self._template, f.type, self._placeholders))
            pos = self._redacted_to = f.end
        else:
            if cut > pos:
                out.append(text[pos - self._done : cut - self._done])
                pos = cut
        self._held = text[pos - self._done :]
        self._done = pos
        return "".join(out)
