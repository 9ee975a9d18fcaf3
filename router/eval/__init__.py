"""Measurements of the intent router (quality, training time, cost tiers) on ../shared/data."""

import os
from pathlib import Path

#: The shared data sets: ``INTERLOCK_SHARED_DATA`` when set (a git worktree does not sit beside ``shared/``),
#: else ``../shared/data`` beside the repository.
DATA = Path(os.environ.get("INTERLOCK_SHARED_DATA") or Path(__file__).resolve().parents[2].parent / "shared" / "data")
