"""What users type, made comparable: the same normalisation at training and at decision time, and typo
variants added to small training sets so one slip of the finger does not move a query to another intent."""

from __future__ import annotations

import random
import re
import unicodedata

_PUNCT = re.compile(r"[^\w\s']+|_")
_REPEAT = re.compile(r"(\w)\1{2,}")  # "pleeeease" -> "pleease": three or more of a letter are never a spelling
_SPACE = re.compile(r"\s+")
_KEYS = "qwertyuiop asdfghjkl zxcvbnm"


def normalise(text: str) -> str:
    """Case, punctuation, repeated letters and spacing do not carry intent: fold them away."""
    text = unicodedata.normalize("NFKC", text).lower().replace("\u2019", "'")
    text = _PUNCT.sub(" ", text)
    text = _REPEAT.sub(r"\1\1", text)
    return _SPACE.sub(" ", text).strip()


def _neighbours() -> dict[str, str]:
    rows = _KEYS.split()
    out: dict[str, str] = {}
    for row in rows:
        for i, c in enumerate(row):
            out[c] = (row[i - 1] if i else "") + (row[i + 1] if i + 1 < len(row) else "")
    return out


_NEAR = _neighbours()


def typo(text: str, rng: random.Random) -> str:
    """One common slip in one word of four letters or more: swapped, dropped, doubled or a neighbouring key."""
    words = text.split(" ")
    long_words = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
    if not long_words:
        return text
    i = rng.choice(long_words)
    w = words[i]
    j = rng.randrange(1, len(w) - 1)
    kind = rng.randrange(4)
    if kind == 0:
        w = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    elif kind == 1:
        w = w[:j] + w[j + 1 :]
    elif kind == 2:
        w = w[:j] + w[j] + w[j:]
    else:
        near = _NEAR.get(w[j], "") or w[j]
        w = w[:j] + rng.choice(near) + w[j + 1 :]
    words[i] = w
    return " ".join(words)


def augment(texts: list[str], labels: list[int], budget: int, seed: int = 0) -> list[tuple[str, int]]:
    """One typo variant ``(text, source index)`` per example, for at most ``budget`` examples spread evenly
    over the classes.

    Large example sets already hold real variety (and training time matters there); small ones gain most.
    """
    if budget <= 0:
        return []
    rng = random.Random(seed)
    order = list(range(len(texts)))
    rng.shuffle(order)
    # Round-robin over classes so a class with thousands of examples does not take the whole budget.
    by_class: dict[int, list[int]] = {}
    for i in order:
        by_class.setdefault(labels[i], []).append(i)
    picked: list[int] = []
    queues = list(by_class.values())
    while len(picked) < budget and any(queues):
        for q in queues:
            if q and len(picked) < budget:
                picked.append(q.pop())
    out = []
    for i in picked:
        t = typo(texts[i], rng)
        if t != texts[i]:
            out.append((t, i))
    return out
