"""Implicit feedback read from traffic, with no app code: which request a user reacted to, and how.

- **regeneration**: the same conversation sent again (every message identical): about the earlier request;
- **rephrase**: the last user turn edited and resent, or a next user turn very similar to the previous one or
  starting like a correction ("No, I meant ..."): about the earlier request;
- **early termination**: the client left a stream after tokens had arrived: about this request;
- **refusal**: the model declined (an OpenAI ``refusal`` field, a ``content_filter`` finish, or an answer that
  opens like a refusal): about this request (a stream is read as its text is assembled, ``streams.py``);
- **abandonment**: the conversation's last answer went badly (any of the above, or an error) and no next turn
  came within ``abandon_after``: about that last request (found by ``sweep``).

A conversation is the key plus its messages up to the first user turn; each message is known by a short hash.
State is per gateway process (a user whose next turn reaches another replica is not followed: a known limit).
"""

from __future__ import annotations

import difflib
import hashlib
import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import orjson

from gateway.recording import prompt_version
from gateway.types import RequestContext

CORRECTION = re.compile(r"^\s*(no|nope|wrong|that'?s not|not what|i meant|actually)\b[\s,.!:-]*", re.IGNORECASE)
REFUSAL = re.compile(
    r"^\s*(i'?m sorry,? (but )?i (can(no|')t|am unable|won'?t)|i can(no|')t (help|assist|comply|provide)|"
    r"i am unable to|i'?m not able to (help|assist)|as an ai,? i can(no|')t)",
    re.IGNORECASE,
)


@dataclass(slots=True)
class Turn:
    """What is remembered of one request: enough to attribute a signal to it (never its text beyond the last
    user turn, which stays in memory only for the similarity test)."""

    request_id: str
    trace_id: str | None
    key_id: str | None
    team_id: str | None
    model: str
    route: str
    prompt_version: str | None
    digests: tuple[bytes, ...]
    last_user: str
    at: float
    negative: bool = False
    followed: bool = False


@dataclass(slots=True)
class Signal:
    kind: str
    turn: Turn
    related_request_id: str | None = None


def _text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def similar(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a[:500].lower(), b[:500].lower()).ratio()


def is_refusal(body: dict) -> bool:
    """An OpenAI chat completion that declined."""
    for choice in body.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        message = choice.get("message") or {}
        if choice.get("finish_reason") == "content_filter" or message.get("refusal"):
            return True
        content = message.get("content")
        if isinstance(content, str) and REFUSAL.match(content[:200]):
            return True
    return False


@dataclass
class SignalDetector:
    window: float = 1800
    abandon_after: float = 300
    similarity: float = 0.8
    max_conversations: int = 100_000
    clock: object = time.monotonic
    _convs: OrderedDict = field(default_factory=OrderedDict)
    _openings: OrderedDict = field(default_factory=OrderedDict)

    def observe(self, ctx: RequestContext) -> list[Signal]:
        """Called once when a chat request is over; returns the signals it reveals."""
        messages = ctx.body.get("messages")
        if ctx.route != "chat" or not isinstance(messages, list) or not messages:
            return []
        now = self.clock()
        digests = tuple(hashlib.blake2b(orjson.dumps(m), digest_size=8).digest() for m in messages)
        first_user = next((i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "user"), 0)
        p = ctx.principal
        conv = (p.key_id, digests[: first_user + 1])
        last = messages[-1] if isinstance(messages[-1], dict) else {}
        last_user = _text(last.get("content")) if last.get("role") == "user" else ""
        span = ctx.notes.get("otel_span")
        turn = Turn(
            ctx.request_id,
            f"{span.trace_id:032x}" if span is not None else None,
            p.key_id,
            p.team_id,
            ctx.served_model or ctx.model,
            ctx.route,
            prompt_version(ctx.body),
            digests,
            last_user,
            now,
        )
        signals: list[Signal] = []
        # An edited first question starts a "new" conversation: find it by the key's last one with the same
        # system prompt instead (an app whose users share a key interleaves here: signals are missed, not made up).
        opening = (p.key_id, digests[:first_user])
        prev: Turn | None = self._convs.get(conv)
        same_conversation = prev is not None
        if prev is None and len(digests) == first_user + 1:
            prev = self._openings.get(opening)
        if prev is not None and now - prev.at <= self.window:
            kind = self._reaction(prev, turn)
            if kind is not None:
                signals.append(Signal(kind, prev, ctx.request_id))
                turn.negative = True  # retrying is a sign of trouble: if the user stops here, they gave up
            if kind is not None or same_conversation:  # a new, unrelated question does not continue that one
                prev.followed = True
        if ctx.status == 499 and ctx.stream and ctx.first_token_at is not None:
            signals.append(Signal("early_termination", turn))
        if ctx.notes.get("refusal"):
            signals.append(Signal("refusal", turn))
        turn.negative = turn.negative or any(s.turn is turn for s in signals) or ctx.status >= 400
        self._convs[conv] = turn
        self._convs.move_to_end(conv)
        self._openings[opening] = turn
        self._openings.move_to_end(opening)
        for remembered in (self._convs, self._openings):
            while len(remembered) > self.max_conversations:
                remembered.popitem(last=False)
        return signals

    def _reaction(self, prev: Turn, turn: Turn) -> str | None:
        if turn.digests == prev.digests:
            return "regeneration"
        n = len(prev.digests)
        edited = len(turn.digests) == n and turn.digests[:-1] == prev.digests[:-1]
        next_turn = len(turn.digests) == n + 2 and turn.digests[:n] == prev.digests
        if not ((edited or next_turn) and turn.last_user and prev.last_user):
            return None
        if CORRECTION.match(turn.last_user) or similar(turn.last_user, prev.last_user) >= self.similarity:
            return "rephrase"
        return None

    def sweep(self) -> list[Signal]:
        """Abandoned conversations (see the module docstring); forgets conversations past ``window``."""
        now = self.clock()
        out = []
        for conv, turn in list(self._convs.items()):
            idle = now - turn.at
            if turn.negative and not turn.followed and idle >= self.abandon_after:
                out.append(Signal("abandonment", turn))
                del self._convs[conv]
            elif idle > self.window:
                del self._convs[conv]
        for opening, turn in list(self._openings.items()):
            if now - turn.at > self.window:
                del self._openings[opening]
        return out
