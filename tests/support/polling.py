"""Waiting for something that happens elsewhere (another process, a background task), with a deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any


def eventually(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Call ``check`` until it returns something truthy or ``timeout`` passes; return the last result."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() >= deadline:
            return result
        time.sleep(interval)


async def async_eventually(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """``eventually`` inside an event loop: sleeps without blocking the background tasks being waited for."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() >= deadline:
            return result
        await asyncio.sleep(interval)
