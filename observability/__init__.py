"""Observability: Prometheus metrics and OpenTelemetry traces (GenAI semantic conventions)."""

from observability.metrics import GatewayMetrics
from observability.tracing import (
    CLIENT,
    OPERATION,
    SERVER,
    RemoteParent,
    Span,
    Tracing,
    parent_from_traceparent,
    request_attributes,
)

__all__ = [
    "CLIENT",
    "OPERATION",
    "SERVER",
    "GatewayMetrics",
    "RemoteParent",
    "Span",
    "Tracing",
    "parent_from_traceparent",
    "request_attributes",
]
