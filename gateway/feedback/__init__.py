"""User feedback: explicit (``POST /v1/feedback``) and implicit (signals read from traffic), stored with the request
and its trace, counted in metrics and rollups, and exported as preference pairs (``export.py``)."""

from gateway.feedback.config import FeedbackConfig
from gateway.feedback.service import Feedback, parse
from gateway.feedback.signals import Signal, SignalDetector

__all__ = ["Feedback", "FeedbackConfig", "Signal", "SignalDetector", "parse"]
