"""The guardrails service: the guard models in their own process (``interlock guardrails serve``)."""
