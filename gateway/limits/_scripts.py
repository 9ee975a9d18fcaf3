"""The Lua scripts, run with EVALSHA over the lean client (``_resp.py``), and the admit script's reply as
a typed record. A ``NOSCRIPT`` answer (Redis restarted or flushed its script cache) loads the script and
runs it once more."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.limits._calendar import Periods
from gateway.limits._resp import Arg, RespClient, RespError

_DIR = Path(__file__).parent / "lua"


def source(name: str) -> str:
    """A script's text with the shared helpers (``_lib.lua``) in front of it."""
    return (_DIR / "_lib.lua").read_text() + "\n" + (_DIR / f"{name}.lua").read_text()


class Script:
    """One script and its SHA1, bound to a client: ``await script(keys=[...], args=[...])``."""

    __slots__ = ("client", "sha", "text")

    def __init__(self, text: str, client: RespClient) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()
        self.client = client

    async def __call__(self, keys: Sequence[str], args: Sequence[Arg], timeout: float | None = None) -> Any:
        """Run it; ``timeout`` bounds each command sent (``RespClient.execute``)."""
        client = self.client
        try:
            return await client.execute("EVALSHA", self.sha, len(keys), *keys, *args, timeout=timeout)
        except RespError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
        await client.execute("SCRIPT", "LOAD", self.text, timeout=timeout)
        return await client.execute("EVALSHA", self.sha, len(keys), *keys, *args, timeout=timeout)

    async def later(self, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """The script as a deferred command (``RespClient.execute_later``): sent with the next command."""
        try:
            return await self.client.execute_later("EVALSHA", self.sha, len(keys), *keys, *args)
        except RespError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
        return await self(keys, args)


class Scripts:
    """``admit``, ``settle``, ``reconcile`` and ``renew`` bound to one client."""

    def __init__(self, client: RespClient) -> None:
        self.admit = Script(source("admit"), client)
        self.settle = Script(source("settle"), client)
        self.reconcile = Script(source("reconcile"), client)
        self.renew = Script(source("renew"), client)

    async def load(self, client: RespClient) -> None:
        """SCRIPT LOAD all of them, so the first request already finds them by SHA."""
        for script in (self.admit, self.settle, self.reconcile, self.renew):
            await client.execute("SCRIPT", "LOAD", script.text)


def _int(raw: bytes) -> int | None:
    return int(raw) if raw else None


def _float(raw: bytes) -> float | None:
    return float(raw) if raw else None


@dataclass(slots=True)
class AdmitReply:
    """What ``admit.lua`` answered; see the reply layout at the top of that script."""

    status: str
    #: The Redis server's time when it decided (epoch seconds).
    now: float
    req_limit: int | None
    req_remaining: int | None
    req_reset_ms: int | None
    tok_limit: int | None
    tok_remaining: int | None
    tok_reset_ms: int | None
    #: Denials: which level (0-based), which limit, and the numbers for the message.
    level: int | None
    kind: str
    retry_ms: int | None
    limit: float | None
    used: float | None
    #: Reconcile: the levels (0-based) whose spend counters are missing.
    missing: tuple[int, ...]
    #: Budget denials with room left: USD reserved by requests in flight (``used`` is then what is spent).
    reserved: float | None = None

    @property
    def periods(self) -> Periods:
        return Periods.at(self.now)

    @classmethod
    def parse(cls, raw: list[bytes]) -> AdmitReply:
        level = _int(raw[8])
        return cls(
            status=raw[0].decode(),
            now=float(raw[1]),
            req_limit=_int(raw[2]),
            req_remaining=_int(raw[3]),
            req_reset_ms=_int(raw[4]),
            tok_limit=_int(raw[5]),
            tok_remaining=_int(raw[6]),
            tok_reset_ms=_int(raw[7]),
            level=None if level is None else level - 1,
            kind=raw[9].decode(),
            retry_ms=_int(raw[10]),
            limit=_float(raw[11]),
            used=_float(raw[12]),
            missing=tuple(int(i) - 1 for i in raw[13].split(b",")) if raw[13] else (),
            reserved=_float(raw[14]),
        )
