"""A Prometheus collector that takes its time: a scrape that is still rendering while a test does something else."""

from __future__ import annotations

import threading

from prometheus_client.core import GaugeMetricFamily


class SlowCollector:
    """``collect`` waits until ``release`` is set (at most ``limit`` seconds, so that a render that blocks the event
    loop fails a test instead of hanging it); ``entered`` tells that a render reached it, ``calls`` how often."""

    def __init__(self, limit: float = 5.0) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.limit = limit
        self.calls = 0

    def collect(self):
        self.calls += 1
        self.entered.set()
        self.release.wait(self.limit)
        yield GaugeMetricFamily("test_slow_collector", "A collector that takes its time.", value=1)
