"""The cache service: a shared semantic index over HTTP (``interlock cache serve``)."""
