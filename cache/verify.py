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
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand million "
    "billion trillion first second third fourth fifth sixth seventh eighth ninth tenth half quarter double "
    "triple once twice dozen"
)
_DATES = _set(
    "january february march april may june july august september october november december jan feb mar apr jun "
    "jul aug sep sept oct nov dec monday tuesday wednesday thursday friday saturday sunday today tomorrow "
    "yesterday tonight morning afternoon evening night week weekend month year decade century spring summer "
    "autumn fall winter last next ago bc ad"
)
_COMPARISONS = _set(
    "more less fewer most least better best worse worst higher highest lower lowest larger largest smaller "
    "smallest bigger biggest greater greatest before after above below over under maximum minimum max min "
    "increase decrease faster slower cheaper cheapest longer shorter older younger earlier later than vs "
    "versus only all any every some many few"
)
# Common antonyms: one side of a pair in each question is a different question (buy vs sell).
_ANTONYM_PAIRS = (
    "buy sell,open close,start stop,begin end,add remove,enable disable,allow deny,accept reject,win lose,"
    "hot cold,warm cool,true false,right wrong,good bad,happy sad,rich poor,up down,in out,on off,push pull,"
    "import export,input output,increase decrease,max min,positive negative,import export,love hate,"
    "friend enemy,safe dangerous,legal illegal,early late,fast slow,heavy light,strong weak,hard easy,"
    "long short,tall short,big small,large small,high low,young old,new old,first last,inside outside,"
    "internal external,include exclude,encrypt decrypt,upload download,login logout,lock unlock,send receive,"
    "give take,borrow lend,arrive leave,north south,east west,left right,male female,men women,boy girl,"
    "guilty innocent,alive dead,agree disagree,like dislike,possible impossible,able unable,visible invisible,"
    "always never,everyone nobody,everything nothing,success failure,pass fail,profit loss,credit debit,"
    "deposit withdraw,before after,above below,min max,cheap expensive,clean dirty,full empty,wet dry,"
    "open shut,plus minus,maximum minimum,asc desc,ascending descending,forward backward,horizontal vertical"
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
    comparisons: frozenset[int]
    antonyms: frozenset[int]
    """Hashes of the antonyms of this question's words (a veto when the other question uses one)."""

    def to_json(self) -> list:
        return [
            sorted(self.words), sorted(self.numbers), self.negations, sorted(self.entities), sorted(self.dates),
            sorted(self.comparisons), sorted(self.antonyms),
        ]  # fmt: skip

    @classmethod
    def from_json(cls, data: list) -> Signature:
        w, n, neg, e, d, c, a = data
        return cls(frozenset(w), frozenset(n), neg, frozenset(e), frozenset(d), frozenset(c), frozenset(a))


def signature(text: str) -> Signature:
    words: set[int] = set()
    numbers: set[int] = set()
    entities: set[int] = set()
    dates: set[int] = set()
    comparisons: set[int] = set()
    antonyms: set[int] = set()
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
        if norm in _NEGATIONS:
            negations += 1
        if norm in _DATES:
            dates.add(h)
        if norm in _COMPARISONS:
            comparisons.add(h)
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
        frozenset(comparisons), frozenset(antonyms),
    )  # fmt: skip


def veto(a: Signature, b: Signature) -> str | None:
    """Why ``a`` and ``b`` ask different things (``numbers``, ``negation``, ...), or ``None`` when nothing differs."""
    if a.numbers != b.numbers:
        return "numbers"
    if (a.negations % 2) != (b.negations % 2):
        return "negation"
    # A name counts when the other question does not contain the word at all (case differences are fine).
    if not a.entities <= b.words or not b.entities <= a.words:
        return "entities"
    if a.dates != b.dates:
        return "dates"
    if a.comparisons != b.comparisons:
        return "comparison"
    if (a.antonyms & (b.words - a.words)) or (b.antonyms & (a.words - b.words)):
        return "antonym"
    return None
