"""``ChoiceWindow``: one choice of a guarded stream (``guard_stream.WindowStream``), judged as a stream of its own.

Each choice index has its own hold-back queue, the tail of its text already sent, its incremental span scan
(``guard_span_scan.SpanScan``) and, with ``mask``, its own ``StreamRedactor``: the choices of an ``n > 1`` stream
arrive interleaved, and a value split across two of one choice's chunks must be seen whole however many chunks of
other choices come between. Offsets (findings, redactions) are into this choice's text. The unmasking of the
request's placeholders after this step keeps one unmasker per choice too (``guarding.UnmaskingStream``), over the
request's one reverse map.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import TYPE_CHECKING

import orjson

from gateway.guard_span_scan import SpanScan
from gateway.upstreams.sse import event
from guardrails import Action, Finding
from guardrails.output import OutputVerdict
from guardrails.redaction import StreamRedactor

if TYPE_CHECKING:
    from gateway.guard_stream import WindowStream


class Stop(Exception):
    """A verdict that ends the stream (raised through the choice's generator to ``WindowStream``)."""

    def __init__(self, verdict: OutputVerdict) -> None:
        super().__init__("guardrail tripped")
        self.verdict = verdict


class ChoiceWindow:
    def __init__(self, stream: WindowStream) -> None:
        self._s = stream
        self.held: list[tuple[bytes, str]] = []  # (event, its content text; "" for events without content)
        self._sent = ""  # the tail of this choice's text already let through (at most window_chars)
        self._answer: list[str] = []  # kept only when a whole-answer rule will read it
        self._verdict = OutputVerdict()  # the last window's
        self._base = 0  # where the last judged window starts in the answer (its findings' offsets are from there)
        self._judged = True  # every held text has been through the partial rules
        self._spans = SpanScan(stream.partial, stream._policy.output_actions.longest_value_chars)
        self._redactor = None
        if stream.masks:
            acts = stream._policy.output_actions
            self._redactor = StreamRedactor(acts.redaction, acts.longest_value_chars, stream.placeholders)
        self._released = 0  # characters of the answer let through the window so far
        self._masked: dict[tuple[int, int], Finding] = {}  # for the record: each window's mask findings, deduplicated
        self._last: bytes | None = None  # the last content chunk, the model for a closing one

    async def add(self, ev: bytes, piece: str):
        """Hold ``ev``; yield what may go out now (raises ``Stop`` when a window trips)."""
        s, held = self._s, self.held
        held.append((ev, piece))
        self._judged = self._judged and not piece
        if self._redactor is not None:
            self._redactor.add(piece)
        if s.whole:
            self._answer.append(piece)
        count = sum(1 for _, p in held if p)
        s.max_held = max(s.max_held, count)
        while held and not self._keeps(held[0][0]) and (count > s.hold or not held[0][1]):
            if held[0][1]:  # a content chunk leaves: the window it was part of must pass first
                window = self._sent + "".join(p for _, p in held)
                self._base, self._judged = self._released - len(self._sent), True
                self._verdict = await self._judge(window, whole=False, start=self._base)
                await s.check(self._verdict, window)
                count -= 1
            h, p = held.pop(0)
            self._sent = (self._sent + p)[-s.window :]
            if s.first_release_at is None and p:
                s.first_release_at = time.perf_counter()
            yield self._out(h, p)

    async def last_verdict(self, done: bool) -> tuple[OutputVerdict, str] | None:
        """At the end of the stream (``done``) or an error event: the judgement of what is still held (with the
        whole answer's rules at the end), before it goes out; None when there is nothing left to judge."""
        s = self._s
        whole = s.whole and done
        if not ((self.held and not self._judged) or whole):
            return None
        window = "".join(self._answer) if whole else self._sent + "".join(p for _, p in self.held)
        self._base = 0 if whole else self._released - len(self._sent)
        self._verdict = await self._judge(window, whole=whole, start=self._base)
        self._judged = True
        return self._verdict, window

    def flush(self) -> list[bytes]:
        """Everything held, as it goes out once the last verdict passed (the redactor's hold-back lifted)."""
        out = [self._out(h, p, final=True) for h, p in self.held]
        self.held.clear()
        tail = self._tail()
        if tail is not None:
            out.append(tail)
        return out

    def recorded(self) -> OutputVerdict:
        """The last verdict, with every value redacted so far instead of only those of the last window."""
        v = self._verdict
        if self._masked:
            kept = [(f, a) for f, a in v.findings if a is not Action.MASK]
            v.findings = kept + [(f, Action.MASK) for f in self._masked.values()]
        return v

    def _keeps(self, ev: bytes) -> bool:
        """A masked stream keeps its finish chunk until the end: the text still held back goes out in it."""
        return self._redactor is not None and b'"finish_reason":"' in ev.replace(b'": "', b'":"')

    def _out(self, ev: bytes, piece: str, *, final: bool = False) -> bytes:
        """The event as it goes out: as it came, or (``mask``) with the redacted text that may go now."""
        self._released += len(piece)
        r = self._redactor
        if r is None or (not piece and not (final and self._keeps(ev))):
            return ev
        self._last = ev
        masks, base = self._verdict.masks(), self._base
        for f in masks:
            self._masked.setdefault((f.start + base, f.end + base), replace(f, start=f.start + base, end=f.end + base))
        text = r.emit(masks, base, self._released if piece else r.received, final=final)
        return with_content(ev, text)

    def _tail(self) -> bytes | None:
        """What a masked choice still holds when the stream ends without a chunk to carry it (no finish chunk)."""
        r = self._redactor
        if r is None or not r.pending or self._last is None:
            return None
        return with_content(self._last, r.emit(self._verdict.masks(), self._base, r.received, final=True), finish=True)

    async def _judge(self, text: str, *, whole: bool, start: int) -> OutputVerdict:
        """The rules on ``text`` (the window from ``start`` in the answer, or the whole answer); span guards on a
        window scan only what they have not read yet (``guard_span_scan.py``)."""
        s, spans = self._s, self._spans
        if whole or not spans.rules:
            return await s.run(text, None if whole else s.partial)
        scan_from = spans.region(start, start + len(text))
        scan, rest = await asyncio.gather(
            s.run(text[scan_from - start :], spans.rules), s.run(text, s.partial - spans.rules)
        )
        return spans.merge(scan, scan_from, start, start + len(text), rest)


def with_content(ev: bytes, text: str, *, finish: bool = False) -> bytes:
    """``ev`` with its choice's content (or text) replaced; ``finish``: as an extra chunk, its finish reason cleared."""
    obj = orjson.loads(ev[6:])
    for c in obj.get("choices") or ():
        d = c.get("delta")
        if isinstance(d, dict):
            d["content"] = text
        else:
            c["text"] = text
        if finish:
            c["finish_reason"] = None
    return event(orjson.dumps(obj))


def split_event(ev: bytes) -> list[tuple[int, bytes, str]] | None:
    """A chunk as ``(choice index, event of that choice alone, its content text or "")``, one per choice (an event
    of several choices is split; of none, ``[]``: the usage chunk); None for events that are not chunks (an error,
    something unreadable)."""
    if not ev.startswith(b"data: {"):
        return None
    try:
        obj = orjson.loads(ev[6:])
    except orjson.JSONDecodeError:
        return None
    if "error" in obj and "choices" not in obj:
        return None
    choices = [c for c in obj.get("choices") or () if isinstance(c, dict)]
    out = []
    for c in choices:
        d = c.get("delta")
        piece = d.get("content") if isinstance(d, dict) else c.get("text")
        index = c.get("index", 0)
        part = ev if len(choices) == 1 else event(orjson.dumps({**obj, "choices": [c]}))
        out.append((index if isinstance(index, int) else 0, part, piece if isinstance(piece, str) else ""))
    return out
