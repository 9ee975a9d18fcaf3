"""Generated training data for the cacheability classifier, seeded and reproducible.

Two classes: *uncacheable* (the answer depends on who asks or on when: "where is my order?", "weather in Oslo
right now?") and *cacheable* (the answer is the same for everyone, any day: "explain TCP slow start"). The
sentences are built from templates and word lists written for this purpose (no public data set has these
labels). Templates are split in two disjoint halves, so the held-out score measures wording the model has not
seen, not memorised templates.
"""

from __future__ import annotations

import random

_USER_THINGS = (
    "order", "package", "account", "balance", "subscription", "invoice", "bill", "refund", "booking",
    "reservation", "appointment", "ticket", "claim", "application", "delivery", "flight", "loan", "credit score",
    "plan", "password reset request", "support case", "shipment", "payment", "paycheck", "points", "cart",
)  # fmt: skip
_USER_TEMPLATES = (
    "what's the status of my {t}?", "where is my {t}?", "has my {t} been processed yet?", "when will my {t} arrive?",
    "can you check my {t}", "why was my {t} declined?", "show me my {t}", "how much is left on my {t}?",
    "did my {t} go through?", "what is the balance of my {t}", "is my {t} confirmed?", "look up my {t} please",
    "I haven't received my {t}, what happened?", "tell me about my last {t}", "what did I order last week?",
    "how many {t}s do I have?", "cancel my {t} number 4411", "what's the tracking number for my {t}?",
    "list my recent {t}s", "when does my {t} expire?", "my {t} shows an error, what is wrong with it?",
    "what is my current {t}?", "can you update my {t}?", "do I still owe anything on my {t}?",
)  # fmt: skip
_TIME_THINGS = (
    "the weather in {c}", "the stock price of {co}", "the exchange rate of the euro", "the score of the game",
    "the traffic on the highway", "the top news", "bitcoin's price", "the temperature in {c}",
    "the air quality in {c}", "the queue at the {c} airport", "the gas price in {c}", "the headlines",
    "the latest version of Python", "the election results", "the time in {c}", "flights delayed at {c}",
)  # fmt: skip
_TIME_TEMPLATES = (
    "what is {t} right now?", "what's {t} today?", "tell me {t} at the moment", "how is {t} this morning?",
    "give me {t} currently", "latest update on {t}", "what will {t} be tomorrow?", "is {t} good tonight?",
    "check {t} for me now", "{t} this week?", "live updates on {t}", "what was {t} yesterday?",
    "current {t} please", "how did {t} change in the last hour?", "breaking: {t}?", "any news about {t} today",
)  # fmt: skip
_TOPICS = (
    "photosynthesis", "TCP slow start", "the French revolution", "recursion", "compound interest", "black holes",
    "the Pythagorean theorem", "binary search", "supply and demand", "the water cycle", "vaccines", "inflation",
    "quicksort", "the Roman empire", "plate tectonics", "neural networks", "DNA replication", "the blockchain",
    "gravity", "the immune system", "REST APIs", "Docker containers", "the stock market", "climate",
    "the weather system", "Kubernetes pods", "SQL joins", "regular expressions", "Shakespeare's sonnets", "tides",
    "my first program in Rust", "the order of operations", "an account of the war of 1812", "relativity",
)  # fmt: skip
_TASKS = (
    "sort a list in Python", "reverse a string in JavaScript", "bake sourdough bread", "tie a bowline knot",
    "write a cover letter", "center a div in CSS", "change a flat tire", "reset my router", "learn a language",
    "make cold brew coffee", "write a haiku", "improve my sleep", "set up a git repository", "read a CSV in pandas",
    "reset my password in Linux", "ask for a raise", "plan a garden", "prepare for an interview",
    "cancel a subscription in general", "track a package with a carrier", "read a weather map",
)  # fmt: skip
_GENERAL_TEMPLATES = (
    "explain {x}", "what is {x}?", "how does {x} work?", "give me a summary of {x}", "write a poem about {x}",
    "what are the main ideas of {x}?", "can you describe {x} in simple terms", "teach me about {x}",
    "why is {x} important?", "compare {x} and {y}", "what is the history of {x}?", "list three facts about {x}",
    "how do I {task}?", "what's the best way to {task}?", "steps to {task}", "help me {task}",
    "translate 'good morning' into {lang}", "what is the capital of {country}?", "how tall is Mount Everest?",
    "who wrote Pride and Prejudice?", "define {x}", "what does {x} mean?", "give an example of {x}",
    "write a function to {task}", "tips to {task}", "is it hard to {task}?", "what causes {x}?",
    "how many bones are in the human body?", "what year did World War II end?", "convert 10 miles to km",
    "what's the {prop} of {thing}?", "at {cond}, what's the {prop} of {thing}?",
    "what's the difference between {x} and {y}?",
    "in {field}, what does {x} mean?", "what is the {prop} of {thing} at {cond}?", "what's a good book about {x}?",
    "what's {x}?", "for a beginner, what is {x}?", "what's the {prop} of {thing} in {field}?",
)  # fmt: skip
_PROPS = ("boiling point", "melting point", "speed", "density", "chemical formula", "origin", "definition", "mass")
_THINGS = ("water", "iron", "light", "sound", "ethanol", "gold", "a proton", "glass", "the word 'quixotic'")
_CONDS = ("sea level", "room temperature", "high altitude", "standard pressure", "absolute zero")
_FIELDS = ("physics", "statistics", "law", "music theory", "biology", "economics", "chess")
_CITIES = ("Oslo", "Paris", "Tokyo", "Lagos", "Lima", "Denver", "Mumbai", "Berlin", "Cairo", "Toronto")
_COMPANIES = ("Apple", "Tesla", "Nvidia", "Siemens", "Toyota", "Shopify")
_LANGS = ("French", "German", "Japanese", "Spanish", "Swahili")
_COUNTRIES = ("Peru", "Kenya", "Norway", "Vietnam", "Canada", "Chile")


def _fill(rng: random.Random, template: str) -> str:
    x, y = rng.sample(_TOPICS, 2)
    return template.format(
        t=rng.choice(_USER_THINGS), x=x, y=y, task=rng.choice(_TASKS), lang=rng.choice(_LANGS),
        country=rng.choice(_COUNTRIES), c=rng.choice(_CITIES), co=rng.choice(_COMPANIES),
        prop=rng.choice(_PROPS), thing=rng.choice(_THINGS), cond=rng.choice(_CONDS), field=rng.choice(_FIELDS),
    )  # fmt: skip


def _time_sentence(rng: random.Random, template: str) -> str:
    return _fill(rng, template.replace("{t}", rng.choice(_TIME_THINGS)))


def generate(seed: int = 7, per_class: int = 1500) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(train, held-out): rows of (text, 1 if uncacheable else 0), from disjoint halves of the templates."""
    rng = random.Random(seed)
    splits: tuple[list[tuple[str, int]], list[tuple[str, int]]] = ([], [])
    for half in (0, 1):
        user = _USER_TEMPLATES[half::2]
        time_ = _TIME_TEMPLATES[half::2]
        general = _GENERAL_TEMPLATES[half::2]
        n = per_class if half == 0 else per_class // 3
        for _ in range(n):
            coin = rng.random() < 0.5
            text = _fill(rng, rng.choice(user)) if coin else _time_sentence(rng, rng.choice(time_))
            splits[half].append((_vary(rng, text), 1))
            splits[half].append((_vary(rng, _fill(rng, rng.choice(general))), 0))
    for i, text in enumerate(_mt_bench()):
        splits[i % 4 == 0].append((text, 0))  # a quarter held out
    return splits


def _mt_bench() -> list[str]:
    """First turns of MT-bench (Apache-2.0, ../shared/data/chat/mt_bench): real requests whose answers do not
    depend on who asks or when. Skipped where the shared data is absent (the generated data stands alone)."""
    import json
    import os
    from pathlib import Path

    # INTERLOCK_SHARED_DATA, as the other training scripts: a checkout not beside ../shared (a git worktree).
    shared = os.environ.get("INTERLOCK_SHARED_DATA") or Path(__file__).resolve().parents[3] / "shared/data"
    path = Path(shared) / "chat/mt_bench/question.jsonl"
    if not path.exists():
        return []
    return [json.loads(line)["turns"][0] for line in path.read_text().splitlines() if line.strip()]


def _vary(rng: random.Random, text: str) -> str:
    """Casing and politeness noise, so the model does not learn the templates' exact surface."""
    if rng.random() < 0.3:
        text = rng.choice(("please ", "hey, ", "quick question: ", "")) + text
    if rng.random() < 0.3:
        text = text.capitalize()
    return text
