"""The intent router as a service: ``interlock router serve`` (``router.mode: service`` in the gateways)."""
