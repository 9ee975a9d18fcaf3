"""Generated question pairs for the pair verifier, seeded and reproducible.

The paraphrase sets are sentence pairs (news, Wikipedia, subtitles); a cache sees questions. These templates
give the verifier question pairs of both kinds: *same question* (another wording of one intent, or a slot value
replaced by a synonym) and *different question* (one slot changed: another object, number, language or
direction; a verb turned into its opposite or into a different action; a negation added). The one-word changes
("When was X founded?" / "When was X dissolved?") are the kind the rules cannot see.

Each family is a list of wordings of one intent.
"""

from __future__ import annotations

import random

from cache._lexicon import FUNCTION_WORDS

# {a} and {b}: slots. Each family: (wordings, slot lists). A slot list holds groups of synonyms; a different
# group is a different question.
_THINGS = [["water"], ["iron"], ["gold"], ["ethanol"], ["copper"], ["salt"], ["mercury"], ["glass"], ["nitrogen"]]
_PROPS = [["boiling point"], ["melting point"], ["density"], ["chemical formula"], ["molar mass"]]
_LANGS = [["Python"], ["JavaScript"], ["Java"], ["Rust"], ["Go"], ["C++"], ["Ruby"], ["Bash"]]
_TASKS = [
    ["sort a list", "order a list"], ["reverse a list", "invert the order of a list"], ["remove duplicates from a list",
    "deduplicate a list"], ["read a file", "open and read a file"], ["write to a file"], ["split a string"],
    ["join a list of strings", "concatenate a list of strings"], ["convert a string to an integer", "parse an int "
    "from a string"], ["copy a file"], ["delete a file", "remove a file"], ["rename a file"], ["create a directory",
    "make a folder"], ["encrypt a file"], ["decrypt a file"], ["compress a folder", "zip a folder"],
    ["extract a zip archive", "unzip an archive"], ["start a thread"], ["stop a thread"], ["open a socket"],
    ["close a socket"], ["upload a file to S3"], ["download a file from S3"], ["lock a mutex"], ["unlock a mutex"],
]  # fmt: skip
_TOPICS = [
    ["photosynthesis"], ["inflation"], ["black holes"], ["recursion"], ["compound interest"], ["plate tectonics"],
    ["the immune system"], ["supply and demand"], ["machine learning"], ["the water cycle"], ["quantum entanglement"],
    ["natural selection"], ["the stock market"], ["blockchain"], ["nuclear fusion"], ["nuclear fission"],
]  # fmt: skip
_ORGS = [["Apple"], ["Microsoft"], ["the United Nations"], ["NASA"], ["Toyota"], ["the Red Cross"], ["IKEA"],
         ["Google"], ["Amazon"], ["the World Bank"]]  # fmt: skip
_EVENTS = [["founded", "established", "created"], ["dissolved", "shut down", "closed"], ["renamed"], ["sold"],
           ["listed on the stock exchange", "taken public"], ["acquired", "bought"]]  # fmt: skip
_PEOPLE = [["Marie Curie"], ["Isaac Newton"], ["Ada Lovelace"], ["Nelson Mandela"], ["Albert Einstein"],
           ["Frida Kahlo"], ["Alan Turing"], ["Charles Darwin"]]  # fmt: skip
_LIFE = [["born"], ["die", "pass away"], ["marry", "get married"], ["retire"], ["move to England"],
         ["win the Nobel prize"]]  # fmt: skip
_UNITS = [["miles"], ["kilometres", "kilometers", "km"], ["pounds", "lbs"], ["kilograms", "kg"], ["inches"],
          ["centimetres", "cm"], ["Celsius"], ["Fahrenheit"], ["dollars", "USD"], ["euros", "EUR"]]  # fmt: skip
_NUMBERS = [["2", "two"], ["3", "three"], ["5", "five"], ["10", "ten"], ["12"], ["25"], ["100"], ["250"]]
_SYMPTOMS = [["a headache"], ["a fever"], ["a cough"], ["back pain"], ["insomnia", "trouble sleeping"],
             ["nausea"], ["a sore throat"]]  # fmt: skip
_ACTIONS = [["cause", "lead to"], ["cure", "treat"], ["prevent", "stop"], ["worsen", "make worse"]]
_FOODS = [["coffee"], ["alcohol"], ["sugar"], ["garlic"], ["green tea"], ["chocolate"], ["ibuprofen"]]
_ANIMALS = [["cats"], ["dogs"], ["horses"], ["parrots"], ["rabbits"], ["goldfish"]]
_ABLE = [["eat grapes"], ["eat chocolate"], ["drink milk"], ["see colours", "see colors"], ["swim"],
         ["live alone"]]  # fmt: skip
_CITIES = [["Paris"], ["Tokyo"], ["Berlin"], ["Lima"], ["Cairo"], ["Oslo"], ["Toronto"], ["Mumbai"]]
_SEASONS = [["in summer"], ["in winter"], ["in spring"], ["in autumn", "in the fall"]]
_SIDES = [["faster"], ["slower"], ["cheaper"], ["more expensive"], ["safer"], ["more dangerous"]]
_VEHICLES = [["a train"], ["a plane"], ["a car"], ["a bus"], ["a bike", "a bicycle"], ["a ferry"]]
_BOOKS = [["Pride and Prejudice"], ["War and Peace"], ["Don Quixote"], ["The Odyssey"], ["Moby-Dick"], ["Hamlet"]]
_ROLES = [["wrote", "is the author of"], ["translated"], ["illustrated", "drew the pictures for"], ["published"],
          ["banned"], ["adapted", "made a film of"]]  # fmt: skip
_SOFTWARE = [["Docker"], ["Node.js"], ["PostgreSQL", "Postgres"], ["pip"], ["Git"], ["Redis"], ["nginx"]]
_OPS = [["install", "set up"], ["uninstall", "remove"], ["upgrade", "update"], ["configure"], ["restart"],
        ["back up"]]  # fmt: skip
_SYSTEMS = [["Ubuntu"], ["Windows"], ["macOS", "a Mac"], ["Debian"], ["a Raspberry Pi"]]
_TERMS = [["entropy"], ["bias"], ["a kernel"], ["variance"], ["a tree"], ["a field"], ["pressure"]]
_FIELDS = [["physics"], ["statistics"], ["computing", "computer science"], ["algebra"], ["biology"], ["law"]]
_HEAT = [["heat", "warm up"], ["freeze", "cool below zero"], ["compress"], ["magnetise", "magnetize"],
         ["burn", "set fire to"], ["dissolve"]]  # fmt: skip

FAMILIES: list[tuple[list[str], dict[str, list[list[str]]]]] = [
    (["What is the {b} of {a}?", "What's {a}'s {b}?", "Tell me the {b} of {a}.", "Do you know the {b} of {a}?",
      "{a}: what is its {b}?"], {"a": _THINGS, "b": _PROPS}),
    (["How do I {a} in {b}?", "How can I {a} using {b}?", "In {b}, how do you {a}?", "What's the best way to {a} in "
      "{b}?", "Show me how to {a} with {b}."], {"a": _TASKS, "b": _LANGS}),
    (["Explain {a} in simple terms.", "Can you explain {a} simply?", "Give me a simple explanation of {a}.",
      "What is {a}, in plain words?", "Help me understand {a}."], {"a": _TOPICS}),
    (["When was {a} {b}?", "In what year was {a} {b}?", "What year was {a} {b}?", "When exactly was {a} {b}?"],
     {"a": _ORGS, "b": _EVENTS}),
    (["When did {a} {b}?", "In which year did {a} {b}?", "What year did {a} {b}?", "At what age did {a} {b}?"],
     {"a": _PEOPLE, "b": _LIFE}),
    (["How many {b} are {n} {a}?", "Convert {n} {a} to {b}.", "What is {n} {a} in {b}?", "{n} {a} equals how many "
      "{b}?"], {"a": _UNITS, "b": _UNITS, "n": _NUMBERS}),
    (["Does {a} {b} {c}?", "Can {a} {b} {c}?", "Is it true that {a} can {b} {c}?", "Is {a} known to {b} {c}?"],
     {"a": _FOODS, "b": _ACTIONS, "c": _SYMPTOMS}),
    (["Can {a} {b}?", "Is it okay for {a} to {b}?", "Are {a} able to {b}?", "Should {a} {b}?"],
     {"a": _ANIMALS, "b": _ABLE}),
    (["What is the weather like in {a} {b}?", "How is the climate of {a} {b}?", "What's {a} like {b}, weather-wise?",
      "Is {a} pleasant {b}?"], {"a": _CITIES, "b": _SEASONS}),
    (["Is {a} {s} than {b}?", "Would {a} be {s} than {b}?", "Compared with {b}, is {a} {s}?", "Which is {s}: {a} "
      "or {b}?"], {"a": _VEHICLES, "b": _VEHICLES, "s": _SIDES}),
    (["What are {n} facts about {a}?", "Give me {n} facts about {a}.", "List {n} interesting facts about {a}.",
      "Tell me {n} things about {a}."], {"a": _TOPICS, "n": _NUMBERS}),
    (["What is the capital of the country where {a} was born?", "In which capital city was {a}'s country governed "
      "from?", "Where was {a} born, and what is that country's capital?"], {"a": _PEOPLE}),
    (["Who {b} {a}?", "Do you know who {b} {a}?", "Which person {b} {a}?", "Tell me who {b} {a}."],
     {"a": _BOOKS, "b": _ROLES}),
    (["How do I {b} {a} on {c}?", "How can I {b} {a} on {c}?", "What are the steps to {b} {a} on {c}?",
      "On {c}, how do you {b} {a}?"], {"a": _SOFTWARE, "b": _OPS, "c": _SYSTEMS}),
    (["What does {a} mean in {b}?", "In {b}, what is {a}?", "What is the meaning of {a} in {b}?", "Define {a} as "
      "used in {b}."], {"a": _TERMS, "b": _FIELDS}),
    (["What happens if you {b} {a}?", "What happens when you {b} {a}?", "If I {b} {a}, what happens?", "What is "
      "the result of trying to {b} {a}?"], {"a": _THINGS, "b": _HEAT}),
]  # fmt: skip

# A negation added to a wording: the same question turned around.
_NEGATE = (("Does ", "Does not "), ("Can ", "Can't "), ("Is it ", "Is it not "), ("Should ", "Shouldn't "),
           ("Are ", "Aren't "), ("Is ", "Isn't "))  # fmt: skip


def _fill(rng: random.Random, wording: str, values: dict[str, list[str]]) -> str:
    text = wording
    for slot, group in values.items():
        text = text.replace("{" + slot + "}", rng.choice(group))
    return text[0].upper() + text[1:]


def _pick(rng: random.Random, slots: dict[str, list[list[str]]]) -> dict[str, list[str]]:
    values = {s: rng.choice(groups) for s, groups in slots.items()}
    if "a" in values and "b" in values and values["a"] is values["b"]:  # "miles to miles" is no question
        return _pick(rng, slots)
    return values


def _pair(rng: random.Random, family: tuple[list[str], dict[str, list[list[str]]]]) -> tuple[str, str, int]:
    wordings, slots = family
    values = _pick(rng, slots)
    wording = rng.choice(wordings)
    first = _fill(rng, wording, values)
    if rng.random() < 0.5:  # the same question: any wording, synonyms for the slots
        return first, _fill(rng, rng.choice(wordings), values), 1
    negatable = [w for w in wordings if any(w.startswith(p) for p, _ in _NEGATE)]
    kind = rng.random()
    if kind < 0.15 and negatable:
        wording = rng.choice(negatable)
        first = _fill(rng, wording, values)
        p, q = next((p, q) for p, q in _NEGATE if wording.startswith(p))
        return first, q + first[len(p) :], 0
    other = dict(values)
    if kind < 0.25 and "a" in slots and "b" in slots and slots["a"] is slots["b"]:
        other["a"], other["b"] = values["b"], values["a"]  # the direction turned around
    else:
        slot = rng.choice(sorted(slots))
        other[slot] = rng.choice([g for g in slots[slot] if g is not values[slot]])
    # Another wording half of the time: a different question need not share the surface.
    return first, _fill(rng, rng.choice(wordings) if rng.random() < 0.5 else wording, other), 0


def generate(seed: int = 5, per_family: int = 160) -> list[list[tuple[str, str, int]]]:
    """Per family, pairs (cached question, incoming question, 1 if the same question). The trainer holds whole
    families out, so its figure on them measures intents the model has not seen."""
    rng = random.Random(seed)
    out = []
    for family in FAMILIES:
        seen: dict[tuple[str, str], int] = {}
        for _ in range(per_family):
            a, b, label = _pair(rng, family)
            if a != b:
                seen.setdefault((a, b), label)
        out.append([(a, b, label) for (a, b), label in seen.items()])
    return out


# Surface rewordings that keep a question's meaning: general English, applied to any sentence so that every
# source has near-copies on both sides (a reworded copy: same; one content word replaced: different). Without
# them the model learnt "high word overlap means a different meaning" from the negation sets.
_SAME = (("How do I ", "How can I "), ("How can I ", "How do I "), ("How do I ", "How to "), ("What is ", "What's "),
         ("What's ", "What is "), ("Who is ", "Who's "), ("do not ", "don't "), ("does not ", "doesn't "),
         ("is not ", "isn't "), ("can not ", "cannot "), (" it is ", " it's "), ("Can you ", "Could you "))  # fmt: skip
_SYNONYMS = (
    "big large,small little,fast quick,start begin,buy purchase,help assist,show display,use utilize,get obtain,"
    "make create,fix repair,choose select,reply answer,car automobile,movie film,error mistake,maybe perhaps,"
    "often frequently,need require,enough sufficient,shut close,job occupation,kids children,ill sick,"
    "speak talk,end finish,idea notion,rich wealthy,smart intelligent,hard difficult,near close,"
    "method way,couch sofa,shop store,trip journey,house home,photo picture,error bug,website site"
)
_SYN = {a: b for pair in _SYNONYMS.split(",") for a, b in (pair.split(), pair.split()[::-1])}


def reword(rng: random.Random, text: str) -> str:
    """``text`` in other words of the same meaning (1-2 changes), or ``text`` when none applies."""
    out = text
    for _ in range(2):
        # No politeness added ("please tell me"): words one side adds are how a different question looks too.
        choices = [lambda t: t.rstrip("?.!"), lambda t: t.lower()]
        choices += [lambda t, p=p, q=q: t.replace(p, q, 1) for p, q in _SAME if p in out]
        words = out.split()
        syn = [i for i, w in enumerate(words) if w.lower() in _SYN]
        if syn:
            i = rng.choice(syn)
            choices += [lambda t, i=i, w=words: " ".join([*w[:i], _SYN[w[i].lower()], *w[i + 1 :]])] * 3
        out = rng.choice(choices)(out)
    return out


def _content(word: str) -> bool:
    return len(word) > 3 and word.isalpha() and word.islower() and word not in FUNCTION_WORDS


def swap_word(rng: random.Random, text: str, vocabulary: list[str]) -> str:
    """``text`` with one content word replaced by another word of the same corpus (another question, as a
    refuted fact is another fact), or ``text`` when it has no content word."""
    words = text.split()
    content = [i for i, w in enumerate(words) if _content(w.strip(",.?!"))]
    if not content:
        return text
    i = rng.choice(content)
    core = words[i].strip(",.?!")
    new = rng.choice([w for w in vocabulary if w.lower() != core.lower() and w.lower() not in _SYN] or [core])
    words[i] = words[i].replace(core, new)
    return " ".join(words)


def vocabulary(sentences: list[str]) -> list[str]:
    """The content words of a corpus, for ``swap_word``."""
    return sorted({w.strip(",.?!") for s in sentences for w in s.split() if _content(w.strip(",.?!"))})


def extend(rng: random.Random, text: str, words: list[str]) -> str:
    """``text`` asking for more: a detail of 3-4 content words added at its end ("... with only two of its
    planes" / "sort a list of dicts by key"): the kind of near-copy that is another question."""
    detail = " ".join(rng.sample(words, min(len(words), rng.choice((3, 4)))))
    end = len(text.rstrip("?.!"))
    return f"{text[:end]} {rng.choice(('with', 'for', 'in', 'by', 'and'))} {detail}{text[end:]}"


def near_copies(rng: random.Random, sentence: str, words: list[str]) -> list[tuple[str, str, int]]:
    """Two reworded copies of ``sentence`` (same), a copy with one word replaced and one asking for more
    (different), where they differ: as many near-copies of each kind, so word overlap alone tells nothing."""
    same = {reword(rng, sentence), reword(rng, sentence)} - {sentence}
    other = {swap_word(rng, sentence, words), extend(rng, sentence, words)} - {sentence}
    return [(sentence, x, 1) for x in sorted(same)] + [(sentence, x, 0) for x in sorted(other)]
