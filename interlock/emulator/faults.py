"""Injected faults: what can go wrong with an upstream, on demand.

Fault specs (CLI ``--fault``, header ``x-emulator-fault``, ``POST /emulator/faults``):

* ``status:CODE`` answers CODE with a vLLM-style error body; ``status:429`` adds ``Retry-After: 1``
  (``status:429:5`` sends 5);
* ``hang`` reads the request and never answers (the client's timeout must fire);
* ``cut:K`` (``cut`` = ``cut:1``) streams the role chunk and K token chunks, then drops the connection
  without ``[DONE]``; ``cut:0`` drops it right after the response headers. A non-streamed response is
  cut half-way through its body;
* ``garbage`` answers 200 with a body that is not JSON (streamed: SSE events that are not JSON);
* ``reset`` drops the connection without any response;
* ``none`` (header only) serves this request normally even when faults are scripted.

Which fault a request gets: its header, else the next scripted one, else a random draw of
``--fault`` kinds with probability ``--fault-rate``. Faults apply to the inference routes only.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
from collections import deque
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from interlock.emulator import http
from interlock.emulator.protocol import VLLMError

KINDS = ("status", "hang", "cut", "garbage", "reset", "none")
#: Faults answered before the request reaches the engine (no running slot, no tokens).
INSTANT = ("status", "garbage", "reset")

#: The ASGI scope key under which our uvicorn protocol puts the connection's transport (see server.py).
TRANSPORT_KEY = "interlock.transport"


@dataclass(frozen=True, slots=True)
class Fault:
    kind: str
    status: int = 0
    retry_after: int | None = None
    after_tokens: int = 0

    def __str__(self) -> str:
        if self.kind == "status":
            return f"status:{self.status}" + (f":{self.retry_after}" if self.retry_after is not None else "")
        return f"cut:{self.after_tokens}" if self.kind == "cut" else self.kind


def parse_fault(spec: str) -> Fault:
    """Parse a fault spec (see the module docstring); raises ``ValueError`` naming the bad spec."""
    parts = spec.strip().lower().split(":")
    kind, args = parts[0], parts[1:]
    try:
        if kind == "status" and 1 <= len(args) <= 2:
            status = int(args[0])
            if not 400 <= status <= 599:
                raise ValueError
            retry = int(args[1]) if len(args) == 2 else (1 if status == 429 else None)
            return Fault("status", status=status, retry_after=retry)
        if kind == "cut" and len(args) <= 1:
            after = int(args[0]) if args else 1
            if after < 0:
                raise ValueError
            return Fault("cut", after_tokens=after)
        if kind in ("hang", "garbage", "reset", "none") and not args:
            return Fault(kind)
    except ValueError:
        pass
    raise ValueError(f"bad fault spec {spec!r}: use status:CODE[:RETRY_AFTER], hang, cut[:K], garbage, reset")


class FaultPlan:
    """Decides each inference request's fault: header, then scripted queue, then random draw."""

    def __init__(self, kinds: list[str], rate: float, seed: int | None = None) -> None:
        self.kinds = [parse_fault(k) for k in kinds]
        self.rate = rate
        self._rng = random.Random(seed)
        self._scripted: deque[Fault] = deque()
        self.injected = 0

    def script(self, fault: Fault, count: int) -> None:
        self._scripted.extend([fault] * count)

    def clear(self) -> None:
        self._scripted.clear()

    def draw(self, header: str | None) -> Fault | None:
        fault: Fault | None = None
        if header is not None:
            fault = parse_fault(header)
        elif self._scripted:
            fault = self._scripted.popleft()
        elif self.rate > 0 and self.kinds and self._rng.random() < self.rate:
            fault = self._rng.choice(self.kinds)
        if fault is None or fault.kind == "none":
            return None
        self.injected += 1
        return fault

    def snapshot(self) -> dict[str, Any]:
        return {
            "scripted": [str(f) for f in self._scripted],
            "random": [str(f) for f in self.kinds],
            "rate": self.rate,
            "injected": self.injected,
        }


async def abort_connection(scope: dict) -> bool:
    """Drop the client connection at once (a TCP reset where the OS allows it).

    Returns False when the server gives us no transport (not our uvicorn protocol): the caller then
    raises, and uvicorn closes the connection itself.
    """
    transport = scope.get(TRANSPORT_KEY)
    if transport is None or transport.is_closing():
        return transport is not None
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # SO_LINGER with a zero timeout turns close() into an RST: the client sees "connection reset".
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    # The loop reports the loss on its next turns; let uvicorn see it before the app returns, or it
    # would log "ASGI callable returned without completing response" for a drop we meant.
    for _ in range(3):
        await asyncio.sleep(0)
    return True


GARBAGE_JSON = b"<html><body><h1>502 Bad Gateway</h1></body></html> {not: json"
GARBAGE_SSE = (
    b'data: {"id":"chatcmpl-garbage","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"con\n\n'
    b"data: this is not json\n\n"
    b"data: [DONE]\n\n"
)


async def answer_instant_fault(fault: Fault, stream: bool, scope: dict, send: Any) -> int:
    """Answer an ``INSTANT`` fault; returns the status sent (0 when the connection was dropped)."""
    if fault.kind == "status":
        headers = [(b"retry-after", str(fault.retry_after).encode())] if fault.retry_after is not None else []
        phrase = HTTPStatus(fault.status).phrase
        error = VLLMError(f"{phrase} (injected by the interlock emulator)", status=fault.status, headers=headers)
        await http.send_bytes(send, fault.status, error.body(), headers=error.headers)
        return fault.status
    if fault.kind == "garbage":
        await http.send_bytes(send, 200, GARBAGE_SSE if stream else GARBAGE_JSON, http.SSE if stream else http.JSON)
        return 200
    if not await abort_connection(scope):
        raise ConnectionAbortedError("reset fault: no transport to abort")
    return 0
