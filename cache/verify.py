"""Verification of a semantic near hit: two questions that embed close together but differ in a number, a
negation, a name, a date or a comparison ask for different answers ("flights to Paris in May" / "... in June").
Embeddings are known to blur exactly these, so a near hit is served only when none of them differ.

A ``Signature`` is what the index keeps of a cached question: hashed tokens per category, never its text.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from cache import _lexicon as lex

_TOKEN = re.compile(r"[A-Za-z]+(?:'[a-z]+)?|\d+(?:[.,:/]\d+)*")


#: Content words one question adds (the other adding at most one) that make it a different question.
ADDED_CLAUSE = 4


def _hash(word: str) -> int:
    return zlib.crc32(word.encode())


@dataclass(slots=True, frozen=True)
class Signature:
    """Hashed tokens of one question, per category."""

    words: frozenset[int]
    numbers: frozenset[int]
    negations: int
    """How many negations (implicit ones too): an even number reads like none ("not impossible")."""
    entities: frozenset[int]
    dates: frozenset[int]
    comparisons: frozenset[str]
    """Directions of comparison words (``+``, ``--``, ``<``...)."""
    antonyms: frozenset[int]
    """Hashes of the antonyms and affix opposites of this question's words (a veto when the other uses one)."""
    negated: frozenset[int] = frozenset()
    """Hashes of the stems of prefix-negated words ("effective" for "ineffective")."""
    quantifiers: frozenset[str] = frozenset()
    """Classes of quantifiers and frequency adverbs (``all``, ``some``, ``few``...)."""
    positive: frozenset[int] = frozenset()
    negative: frozenset[int] = frozenset()
    """Hashes of the evaluative words of each polarity."""
    content: frozenset[int] = frozenset()
    """Hashes of the content words' crude stems ("tokenizes" and "tokenized" are one)."""
    relations: frozenset[tuple[int, int]] = frozenset()
    """Per relation word ("to", "than"...): the hash of (kind, word before, word after) and of the reverse."""

    def to_json(self) -> list:
        return [
            sorted(self.words), sorted(self.numbers), self.negations, sorted(self.entities), sorted(self.dates),
            sorted(self.comparisons), sorted(self.antonyms), sorted(self.negated), sorted(self.quantifiers),
            sorted(self.positive), sorted(self.negative), sorted(self.content),
            sorted(list(r) for r in self.relations),
        ]  # fmt: skip

    @classmethod
    def from_json(cls, data: list) -> Signature:
        """Also reads the 8 fields of entries stored before quantifiers, polarity, content and relations."""
        *head, relations = list(data) + [[]] * (13 - len(data))
        return cls(
            *(frozenset(v) if isinstance(v, list) else v for v in head),
            relations=frozenset(tuple(r) for r in relations),
        )


def _opposites(norm: str) -> list[str]:
    """Words of the opposite meaning made from the same stem by an affix pair (upgrade / downgrade)."""
    out = []
    for p, q in lex.OPPOSITE_PREFIXES:
        for x, y in ((p, q), (q, p)):
            if x and norm.startswith(x) and len(norm) - len(x) >= (5 if not y else 4):
                out.append(y + norm[len(x) :])
    for p, q in lex.OPPOSITE_SUFFIXES:
        for x, y in ((p, q), (q, p)):
            if norm.endswith(x) and len(norm) - len(x) >= 3:
                out.append(norm[: -len(x)] + y)
    return out


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s", "ly"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _relations(tokens: list[str]) -> set[tuple[int, int]]:
    """(u R v) for each relation word R between content words u and v, with its reverse (v R u); ``from``
    is turned around so that "to X from Y" and "Y to X" are the same relation."""
    out: set[tuple[int, int]] = set()
    for i, w in enumerate(tokens):
        kind = lex.RELATIONS.get(w)
        if kind is None:
            continue
        u = next((x for x in reversed(tokens[:i]) if x not in lex.FUNCTION_WORDS and x not in lex.RELATIONS), None)
        v = next((x for x in tokens[i + 1 :] if x not in lex.FUNCTION_WORDS and x not in lex.RELATIONS), None)
        if u is None or v is None or u == v:
            continue
        if kind == "<":
            kind, u, v = ">", v, u
        out.add((_hash(f"{kind} {u} {v}"), _hash(f"{kind} {v} {u}")))
    return out


def signature(text: str) -> Signature:
    words: set[int] = set()
    numbers: set[int] = set()
    entities: set[int] = set()
    dates: set[int] = set()
    comparisons: set[str] = set()
    antonyms: set[int] = set()
    negated: set[int] = set()
    quantifiers: set[str] = set()
    positive: set[int] = set()
    negative: set[int] = set()
    tokens: list[str] = []
    negations = 0
    sentence_start = True
    for m in _TOKEN.finditer(text):
        raw = m.group()
        low = raw.lower()
        if low.endswith("n't"):
            negations += 1
            low = low[:-3]
        norm = low.replace("'", "")
        if norm.endswith("s") and raw.endswith("'s"):
            norm = norm[:-1]
        tokens.append(norm)
        h = _hash(norm)
        words.add(h)
        if raw[0].isdigit():
            numbers.add(_hash(raw.replace(",", "")))
        elif norm in lex.NUMBER_WORDS:
            numbers.add(_hash(lex.DIGITS[norm]) if norm in lex.DIGITS else h)
        # "No, X doesn't exist" answers a question and negates nothing more than "X does not exist".
        if norm in lex.NEGATIONS and not (norm == "no" and text[m.end() : m.end() + 1] == ","):
            negations += 1
        if norm in lex.DATES:
            dates.add(h)
        direction = lex.COMPARISONS.get(norm)
        if direction is not None:
            comparisons.add(direction)
        force = lex.QUANTIFIERS.get(norm)
        if force is not None:
            quantifiers.add(force)
        if norm in lex.POSITIVE:
            positive.add(h)
        elif norm in lex.NEGATIVE:
            negative.add(h)
        for prefix in lex.NEGATING_PREFIXES:
            if norm.startswith(prefix) and len(norm) - len(prefix) >= 4:
                negated.add(_hash(norm[len(prefix) :]))
        for a in lex.ANTONYMS.get(norm, ()):
            antonyms.add(_hash(a))
        for a in _opposites(norm):
            antonyms.add(_hash(a))
        # A capitalised word inside a sentence (or an acronym anywhere) is taken for a name.
        if (
            raw != "I"
            and raw[0].isupper()
            and (not sentence_start or (raw.isupper() and len(raw) > 1))
            and norm not in lex.DATES
        ):
            entities.add(h)
        sentence_start = False
        end = m.end()
        if end < len(text) and text[end] in ".?!":
            sentence_start = True
    return Signature(
        frozenset(words), frozenset(numbers), negations, frozenset(entities), frozenset(dates),
        frozenset(comparisons), frozenset(antonyms), frozenset(negated), frozenset(quantifiers),
        frozenset(positive), frozenset(negative),
        frozenset(_hash(_stem(t)) for t in tokens if t not in lex.FUNCTION_WORDS), frozenset(_relations(tokens)),
    )  # fmt: skip


def veto(a: Signature, b: Signature) -> str | None:
    """Why ``a`` and ``b`` ask different things (``numbers``, ``negation``, ...), or ``None`` when nothing differs.

    Numbers, names, dates, comparisons and quantifiers veto when *changed* (each question has its own), not when
    one question leaves them out: paraphrases drop details ("reverse the 2 lists" / "reverse the lists") far more
    often than questions that differ only by a dropped detail reach the similarity threshold.
    """
    return next(differences(a, b), None)


def differences(a: Signature, b: Signature) -> Iterator[str]:
    """Every rule that sees a difference, in ``veto``'s order (the pair verifier reads them all as features)."""
    if a.numbers != b.numbers and a.numbers and b.numbers:
        yield "numbers"
    if (a.negations % 2) != (b.negations % 2):
        yield "negation"
    if (a.negated & (b.words - a.words)) or (b.negated & (a.words - b.words)):
        yield "negation"
    # A name counts when the other question does not contain the word at all (case differences are fine).
    if (a.entities - b.words) and (b.entities - a.words):
        yield "entities"
    if a.dates != b.dates and a.dates and b.dates:
        yield "dates"
    if a.comparisons != b.comparisons and a.comparisons and b.comparisons:
        yield "comparison"
    if (a.quantifiers - b.quantifiers) and (b.quantifiers - a.quantifiers):
        yield "quantifier"
    if (a.antonyms & (b.words - a.words)) or (b.antonyms & (a.words - b.words)):
        yield "antonym"
    if ((a.positive - b.words) and (b.negative - a.words)) or ((a.negative - b.words) and (b.positive - a.words)):
        yield "polarity"
    if a.relations and b.relations:
        forward = {f for f, _ in b.relations}
        if any(r in forward and f not in forward for f, r in a.relations):
            yield "order"
    # One question asks for more: a clause of its own (4+ content words) where the other adds at most one word
    # ("sort a list" / "sort a list of dicts by key in descending order"). A dropped detail or two does not veto.
    only_a, only_b = len(a.content - b.content), len(b.content - a.content)
    if min(only_a, only_b) <= 1 and max(only_a, only_b) >= ADDED_CLAUSE and a.content and b.content:
        yield "added"
