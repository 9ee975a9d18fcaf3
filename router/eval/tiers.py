"""What cost tiers save on real chat prompts, and where the difficulty estimate sends each kind of request.

    .venv/bin/python -m router.eval.tiers [--max-difficulty 0.3]

Prompts: ShareGPT first turns (1,000; answers assumed ~400 tokens), AlpacaEval (805, with text-davinci-003's
answer) and MT-bench (80, by category). Each prompt gets ``difficulty()``; at or below ``--max-difficulty`` it goes
to the cheap tier, above to the strong model. Cost per request = prompt tokens x input price + answer tokens x
output price (tokens ~ characters / 4), priced like gpt-4o-mini (cheap) and gpt-4o (strong) list prices. The
saving is against sending everything to the strong model. It measures cost only: whether the cheap model's
answers are good enough for the easy share is a separate evaluation this repo cannot run without both models.
"""

from __future__ import annotations

import argparse
import collections
import json

from router.eval import DATA as _SHARED
from router.intent import difficulty

DATA = _SHARED / "chat"
#: USD per million tokens (input, output), list prices: gpt-4o-mini and gpt-4o.
CHEAP, STRONG = (0.15, 0.60), (2.50, 10.00)


def prompts() -> dict[str, list[tuple[str, int, str]]]:
    """Per source: (prompt, answer characters, category)."""
    out: dict[str, list[tuple[str, int, str]]] = {}
    share = json.loads((DATA / "sharegpt-mlenergy" / "ShareGPT_V3_filtered_1000.json").read_text(encoding="utf-8"))
    rows = []
    for conv in share:
        turns = conv.get("conversations") or []
        if turns and turns[0].get("from") == "human":  # first turns only: answers assumed ~400 tokens
            answer = len(turns[1].get("value", "")) if len(turns) > 1 else 1600
            rows.append((turns[0]["value"], answer, "sharegpt"))
    out["sharegpt"] = rows
    alpaca = json.loads((DATA / "alpaca_eval" / "model_outputs_text_davinci_003.json").read_text(encoding="utf-8"))
    out["alpaca_eval"] = [(r["instruction"], len(r.get("output", "")), r.get("dataset", "")) for r in alpaca]
    mt = [json.loads(line) for line in (DATA / "mt_bench" / "question.jsonl").read_text().splitlines() if line]
    out["mt_bench"] = [(r["turns"][0], 1600, r["category"]) for r in mt]  # no reference answers: ~400 tokens
    return out


def cost(prompt_chars: int, answer_chars: int, price: tuple[float, float]) -> float:
    return (prompt_chars / 4 * price[0] + answer_chars / 4 * price[1]) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-difficulty", type=float, default=0.3)
    args = parser.parse_args()
    if not DATA.exists():
        raise SystemExit(f"skipped: {DATA} is absent (the shared data sets)")
    print("| source | prompts | to cheap tier | cost all strong (USD) | cost tiered (USD) | saving |")
    print("|---|---|---|---|---|---|")
    by_category: dict[str, list[bool]] = collections.defaultdict(list)
    for source, rows in prompts().items():
        strong = tiered = 0.0
        cheap = 0
        for text, answer, category in rows:
            easy = difficulty(text) <= args.max_difficulty
            cheap += easy
            strong += cost(len(text), answer, STRONG)
            tiered += cost(len(text), answer, CHEAP if easy else STRONG)
            if source == "mt_bench":
                by_category[category].append(easy)
        print(
            f"| {source} | {len(rows)} | {cheap / len(rows):.0%} | {strong:.3f} | {tiered:.3f} | "
            f"{1 - tiered / strong:.0%} |"
        )
    print("\nMT-bench, share sent to the cheap tier by category:")
    print(", ".join(f"{c} {sum(v) / len(v):.0%}" for c, v in sorted(by_category.items())))


if __name__ == "__main__":
    main()
