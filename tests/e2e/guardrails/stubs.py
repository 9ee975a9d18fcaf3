"""Stand-ins for what these tests do not exercise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

SHIPPED_TOXICITY = Path(__file__).parents[3] / "guardrails" / "models" / "toxicity.npz"


def toxicity_stub_if_unshipped(folder: Path) -> dict[str, Any]:
    """Every guard loads at startup; while the trained toxicity model is not in the tree, a model that scores
    everything near 0 stands in (``guardrails`` settings to merge)."""
    if SHIPPED_TOXICITY.exists():
        return {}
    path = Path(folder) / "toxicity-stub.npz"
    zeros = {"w_emb": np.zeros(384, np.float32), "w_hash": np.zeros(65536, np.float16)}
    empty = {"w_rules": np.zeros(0, np.float32), "rule_names": np.array([], dtype="<U21")}
    np.savez(path, **zeros, **empty, bias=np.float32(-9), threshold=np.float32(0.5), meta=np.array("stub"))
    return {"toxicity": {"model_path": str(path)}}
