"""Verification of a semantic near hit: two questions that embed close together but differ in a number, a
negation, a name, a date or a comparison ask for different answers ("flights to Paris in May" / "... in June").
Embeddings are known to blur exactly these, so a near hit is served only when none of them differ.

A ``Signature`` is what the index keeps of a cached question: hashed tokens per category, never its text.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


_TOKEN = re.compile(r"[A-Za-z]+(?:'[a-z]+)?|\d+(?:[.,:/]\d+)*")
_NEGATIONS = _set(
    "not no never none nobody nothing neither nor without cannot cant dont doesnt didnt isnt arent wasnt werent "
    "wont wouldnt shouldnt couldnt hasnt havent hadnt mustnt nowhere"
)
_NUMBER_WORDS = _set(
    "zero two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand million "
    "billion trillion first second third fourth fifth sixth seventh eighth ninth tenth half quarter double "
    "triple twice dozen"
)
_DATES = _set(
    "january february april june july august september october november december jan feb apr jun jul aug sep "
    "sept oct nov dec monday tuesday wednesday thursday friday saturday sunday today tomorrow yesterday tonight "
    "weekend summer winter autumn"
)
# Comparison words by direction: synonyms ("bigger", "larger") agree, opposite directions veto.
_DIRECTIONS = {
    "+": "more greater bigger larger higher better faster longer older stronger heavier richer",
    "-": "less fewer smaller lower worse slower shorter younger cheaper weaker lighter poorer",
    "++": "most biggest largest highest greatest best fastest longest oldest maximum max",
    "--": "least smallest lowest worst slowest shortest youngest cheapest minimum min fewest",
    "<": "before earlier prior",
    ">": "after later",
}
_COMPARISONS = {w: d for d, words in _DIRECTIONS.items() for w in words.split()}
# Prefixes that negate a word ("ineffective", "unlikely", "disagree"): the stem in the other question vetoes.
_NEGATING_PREFIXES = ("un", "in", "im", "ir", "il", "dis", "non")
# Common antonyms: one side of a pair in each question is a different question (buy vs sell). Pairs of very
# common words with other senses (in/out, right/left, new/old) are left out: they vetoed true paraphrases.
_ANTONYM_PAIRS = (
    "buy sell,open close,start stop,begin end,add remove,enable disable,allow deny,accept reject,win lose,"
    "hot cold,warm cool,true false,good bad,happy sad,rich poor,push pull,import export,input output,"
    "increase decrease,positive negative,love hate,friend enemy,safe dangerous,early late,fast slow,"
    "strong weak,hard easy,long short,big small,large small,high low,young old,inside outside,"
    "internal external,include exclude,encrypt decrypt,upload download,login logout,lock unlock,send receive,"
    "borrow lend,arrive leave,north south,east west,male female,men women,boy girl,guilty innocent,alive dead,"
    "agree disagree,like dislike,always never,everyone nobody,everything nothing,success failure,pass fail,"
    "profit loss,credit debit,deposit withdraw,above below,cheap expensive,clean dirty,full empty,wet dry,"
    "plus minus,ascending descending,forward backward,horizontal vertical,brief long,thin fat,thin thick,"
    "win loss,victory defeat,rise fall,gain loss,accept decline,present absent,ancient modern,maximum minimum"
)
_ANTONYMS: dict[str, set[str]] = {}
for _pair in _ANTONYM_PAIRS.split(","):
    _a, _b = _pair.split()
    _ANTONYMS.setdefault(_a, set()).add(_b)
    _ANTONYMS.setdefault(_b, set()).add(_a)


def _hash(word: str) -> int:
    return zlib.crc32(word.encode())


@dataclass(slots=True, frozen=True)
class Signature:
    """Hashed tokens of one question, per category."""

    words: frozenset[int]
    numbers: frozenset[int]
    negations: int
    """How many negations: an even number of them reads like none ("not impossible")."""
    entities: frozenset[int]
    dates: frozenset[int]
    comparisons: frozenset[str]
    """Directions of comparison words (``+``, ``--``, ``<``...)."""
    antonyms: frozenset[int]
    """Hashes of the antonyms of this question's words (a veto when the other question uses one)."""
    negated: frozenset[int] = frozenset()
    """Hashes of the stems of prefix-negated words ("effective" for "ineffective")."""

    def to_json(self) -> list:
        return [
            sorted(self.words), sorted(self.numbers), self.negations, sorted(self.entities), sorted(self.dates),
            sorted(self.comparisons), sorted(self.antonyms), sorted(self.negated),
        ]  # fmt: skip

    @classmethod
    def from_json(cls, data: list) -> Signature:
        w, n, neg, e, d, c, a, x = data
        return cls(*(frozenset(v) if isinstance(v, list) else v for v in (w, n, neg, e, d, c, a, x)))


def signature(text: str) -> Signature:
    words: set[int] = set()
    numbers: set[int] = set()
    entities: set[int] = set()
    dates: set[int] = set()
    comparisons: set[str] = set()
    antonyms: set[int] = set()
    negated: set[int] = set()
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
        h = _hash(norm)
        words.add(h)
        if raw[0].isdigit():
            numbers.add(_hash(raw.replace(",", "")))
        elif norm in _NUMBER_WORDS:
            numbers.add(h)
        # "No, X doesn't exist" answers a question and negates nothing more than "X does not exist".
        if norm in _NEGATIONS and not (norm == "no" and text[m.end() : m.end() + 1] == ","):
            negations += 1
        if norm in _DATES:
            dates.add(h)
        direction = _COMPARISONS.get(norm)
        if direction is not None:
            comparisons.add(direction)
        for prefix in _NEGATING_PREFIXES:
            if norm.startswith(prefix) and len(norm) - len(prefix) >= 4:
                negated.add(_hash(norm[len(prefix) :]))
        for a in _ANTONYMS.get(norm, ()):
            antonyms.add(_hash(a))
        # A capitalised word inside a sentence (or an acronym anywhere) is taken for a name.
        if (
            raw != "I"
            and raw[0].isupper()
            and (not sentence_start or (raw.isupper() and len(raw) > 1))
            and norm not in _DATES
        ):
            entities.add(h)
        sentence_start = False
        end = m.end()
        if end < len(text) and text[end] in ".?!":
            sentence_start = True
    return Signature(
        frozenset(words), frozenset(numbers), negations, frozenset(entities), frozenset(dates),
        frozenset(comparisons), frozenset(antonyms), frozenset(negated),
    )  # fmt: skip


def veto(a: Signature, b: Signature) -> str | None:
    """Why ``a`` and ``b`` ask different things (``numbers``, ``negation``, ...), or ``None`` when nothing differs.

    Numbers, names, dates and comparisons veto when *changed* (each question has its own), not when one
    question leaves them out: paraphrases drop details ("reverse the 2 lists" / "reverse the lists") far more
    often than questions that differ only by a dropped detail reach the similarity threshold.
    """
    if a.numbers != b.numbers and a.numbers and b.numbers:
        return "numbers"
    if (a.negations % 2) != (b.negations % 2):
        return "negation"
    if (a.negated & (b.words - a.words)) or (b.negated & (a.words - b.words)):
        return "negation"
    # A name counts when the other question does not contain the word at all (case differences are fine).
    if (a.entities - b.words) and (b.entities - a.words):
        return "entities"
    if a.dates != b.dates and a.dates and b.dates:
        return "dates"
    if a.comparisons != b.comparisons and a.comparisons and b.comparisons:
        return "comparison"
    if (a.antonyms & (b.words - a.words)) or (b.antonyms & (a.words - b.words)):
        return "antonym"
    return None
