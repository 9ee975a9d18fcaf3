"""Measurements of the intent router (quality on banking77, training time, decision latency)."""
