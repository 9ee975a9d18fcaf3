"""Revisions in one linear history (each names the previous in ``down_revision``); a package, so it ships."""
