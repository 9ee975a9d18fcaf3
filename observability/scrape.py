"""The body of ``GET /metrics``, rendered off the event loop and shared by the scrapes of one short interval.

prometheus_client renders in pure Python: a gateway registry at its label bound (200 combinations, ~5,900 lines)
takes ~50 ms of CPU. Rendered on the event loop, every request in flight waited that long at each scrape. In a
worker thread the loop still competes for the GIL: it gets it back only when the thread is made to drop it, after
the interpreter's switch interval (5 ms by default) on each of the loop's wake-ups. So while a render runs, the
switch interval is lowered (``switch_interval``): a wake-up then waits at most that long. Measured with
``bench/scrape_stall.py``.

Scrapes that arrive while a render runs wait for that render (one render, however many Prometheus servers scrape),
and its body is served again for ``ttl`` seconds: a scraper polling too often costs no more CPU, and Prometheus,
scraping every 15 s or so, is as well served by a body a second old.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Callable

_switch_lock = threading.Lock()
_switch_users = 0  # renders running now in this process (several services can share one)
_switch_saved = 0.0


def _lower_switch_interval(seconds: float) -> None:
    global _switch_users, _switch_saved
    with _switch_lock:
        if _switch_users == 0:
            _switch_saved = sys.getswitchinterval()
            sys.setswitchinterval(min(seconds, _switch_saved))
        _switch_users += 1


def _restore_switch_interval() -> None:
    global _switch_users
    with _switch_lock:
        _switch_users -= 1
        if _switch_users == 0:
            sys.setswitchinterval(_switch_saved)


class Exposition:
    """``await body()``: the exposition text, rendered by ``render`` in a worker thread at most once per ``ttl``
    seconds. ``refresh`` (optional) runs on the event loop first: gauges read from objects the loop owns.
    ``switch_interval``: the interpreter's switch interval while rendering (``None``: left as it is)."""

    def __init__(
        self,
        render: Callable[[], bytes],
        *,
        ttl: float = 1.0,
        refresh: Callable[[], None] | None = None,
        switch_interval: float | None = 0.0005,
    ) -> None:
        self.render = render
        self.ttl = ttl
        self.refresh = refresh
        self.switch_interval = switch_interval
        self._body: bytes | None = None
        self._rendered_at = 0.0
        self._pending: asyncio.Future[bytes] | None = None

    async def body(self) -> bytes:
        if self._body is not None and time.monotonic() - self._rendered_at < self.ttl:
            return self._body
        if self._pending is None:
            self._pending = asyncio.ensure_future(self._render())
        # shield: a scraper that hangs up cancels its own wait, not the render the others wait for
        return await asyncio.shield(self._pending)

    async def _render(self) -> bytes:
        try:
            if self.refresh is not None:
                self.refresh()
            started = time.monotonic()  # the body's age counts from when its values were read
            body = await asyncio.to_thread(self._render_lowered)
            self._body, self._rendered_at = body, started
            return body
        finally:
            self._pending = None

    def _render_lowered(self) -> bytes:
        if self.switch_interval is None:
            return self.render()
        _lower_switch_interval(self.switch_interval)
        try:
            return self.render()
        finally:
            _restore_switch_interval()
