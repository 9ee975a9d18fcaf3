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
_WORD = re.compile(r"[^\W\d_]+")
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def vocabulary(texts: list[str]) -> list[str]:
    """The examples' words (three letters or more), most frequent first: what a typo is corrected toward."""
    counts: dict[str, int] = {}
    for t in texts:
        for w in _WORD.findall(normalise(t)):
            if len(w) >= 3:
                counts[w] = counts.get(w, 0) + 1
    return sorted(counts, key=lambda w: (-counts[w], w))


def _edits(word: str) -> set[str]:
    """Every string one slip away: a letter dropped, two swapped, one replaced or one added."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    out = {a + b[1:] for a, b in splits if b}
    out |= {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    out |= {a + c + b[1:] for a, b in splits if b for c in _LETTERS}
    out |= {a + c + b for a, b in splits for c in _LETTERS}
    return out


#: Queries longer than this are not corrected, and at most ``_MAX_UNKNOWN`` words are tried: correction runs on
#: the event loop (about 0.1 ms a word), and a typo matters in a short query, not in a pasted page.
_MAX_WORDS = 40
_MAX_UNKNOWN = 4


def correct(text: str, rank: dict[str, int]) -> str | None:
    """``text`` with each word the examples do not use, of four letters or more, replaced by the most frequent
    example word one slip away (``typo``'s slips); ``None`` when nothing changes or the text is long."""
    words = normalise(text).split(" ")
    if len(words) > _MAX_WORDS:
        return None
    changed, tried = False, 0
    for i, w in enumerate(words):
        if len(w) < 4 or w in rank or not w.isalpha():
            continue
        tried += 1
        if tried > _MAX_UNKNOWN:
            break
        near = [c for c in _edits(w) if c in rank]
        if near:
            words[i] = min(near, key=rank.__getitem__)
            changed = True
    return " ".join(words) if changed else None


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
