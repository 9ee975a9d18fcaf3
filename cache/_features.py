"""Features of the cacheability classifier: hashed word unigrams and bigrams (shared by training and serving,
so the two can never drift apart)."""

from __future__ import annotations

import itertools
import re
import zlib

DIM = 1 << 15
_WORD = re.compile(r"[a-z0-9']+")


def features(text: str) -> set[int]:
    words = _WORD.findall(text.lower())
    out = {zlib.crc32(w.encode()) % DIM for w in words}
    out.update(zlib.crc32(f"{a} {b}".encode()) % DIM for a, b in itertools.pairwise(words))
    return out
