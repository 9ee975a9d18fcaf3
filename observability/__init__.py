"""Observability: Prometheus metrics and OpenTelemetry traces (GenAI semantic conventions)."""

from observability.metrics import GatewayMetrics
from observability.tracing import (
    CLIENT,
    OPERATION,
    SERVER,
    Tracing,
    parent_from_traceparent,
    request_attributes,
    traceparent_of,
)

__all__ = [
    "CLIENT",
    "OPERATION",
    "SERVER",
    "GatewayMetrics",
    "Tracing",
    "parent_from_traceparent",
    "request_attributes",
    "traceparent_of",
]
