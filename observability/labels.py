"""Bounded per-tenant label values for the request series: a key, team or system prompt gets its own label value
while there is room, the rest count as ``other``. Prometheus keeps every series it ever saw, so an unbounded
label (one per key of a tenant with 10,000 keys, one per system prompt a client varies per request) would grow
every scrape and the registry's memory forever.

Values are admitted on first sight in this process (not "top N by traffic": re-ranking would move a key's counts
from one series to another and make ``rate()`` lie); what is not admitted is not remembered, so memory is bounded
by the caps whatever the traffic.
"""

from __future__ import annotations

OTHER = "other"


class Bound:
    """Maps a label value to itself while fewer than ``cap`` values were admitted, else to ``other``."""

    __slots__ = ("cap", "seen")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.seen: dict[str, str] = {}

    def __call__(self, value: str | None) -> str:
        if not value or not self.cap:  # anonymous, or the label turned off
            return ""
        got = self.seen.get(value)
        if got is None:
            if len(self.seen) >= self.cap:
                return OTHER
            got = self.seen[value] = value
        return got


class Series:
    """The children of one (route, model, key, team, prompt version): labelled once, then only ``inc`` and
    ``observe`` on the request path (``labels()`` hashes and locks on every call, 8% of the gateway's profile)."""

    __slots__ = ("_requests", "_statuses", "cost", "goodput", "input", "labels", "latency", "output", "tpot", "ttft")

    def __init__(self, metrics, labels: tuple[str, str, str, str, str]) -> None:
        route, model, key, team, version = self.labels = labels
        self.latency = metrics.latency.labels(*labels)
        self.ttft = metrics.ttft.labels(route, model)  # see GatewayMetrics: by route and model only
        self.tpot = metrics.tpot.labels(route, model)
        self.input = metrics.tokens.labels(model, "input", route, key, team, version)
        self.output = metrics.tokens.labels(model, "output", route, key, team, version)
        self.cost = metrics.cost.labels(*labels)
        self.goodput = metrics.goodput.labels(*labels)
        self._requests = metrics.requests
        self._statuses: dict[int, object] = {}

    def count(self, status: int) -> None:
        child = self._statuses.get(status)
        if child is None:
            route, model, key, team, version = self.labels
            child = self._statuses[status] = self._requests.labels(route, model, str(status), key, team, version)
        child.inc()  # type: ignore[attr-defined]
