"""Offline training of the cacheability classifier (not imported by the gateway)."""
