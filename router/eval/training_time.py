"""Training time of a 15,000-example router, two sets:

- ``mixed``: banking77's 10,003 training utterances as 77 intents, plus 4,997 chat prompts (ShareGPT, AlpacaEval,
  MT-bench, Alpaca seed tasks; first 300 characters) as out-of-scope examples;
- ``short``: banking77's training and test utterances (13,083) as 77 intents, plus the 1,917 shortest chat prompts
  as out-of-scope examples: every example a query of a line or so.

    .venv/bin/python -m router.eval.training_time [mixed|short] [--bulk-threads N]

Times ``router.intent.train`` as ``PUT /admin/routers/{name}`` runs it (``EmbeddingService.embed_sync``: the bulk
session, nothing cached), split into embedding and fitting (held-out folds, calibration, final fit; one BLAS
thread), as wall clock and CPU time, with the load average of the machine: on a shared machine the wall clock
is mostly waiting for a core, the CPU time is what the work costs. The embedding's CPU time is the process's
(the bulk session's threads are not the training thread).
"""

from __future__ import annotations

import argparse
import json
import os
import time

from router.eval.quality import DATA, load_banking

TOTAL = 15_000


def chat_prompts() -> list[str]:
    chat = DATA / "chat"
    out: list[str] = []
    for name in ("ShareGPT_V3_filtered_1000.json", "sg_90k_part1_html_cleaned_lang_first_sampled_sorted.json"):
        for conv in json.loads((chat / "sharegpt-mlenergy" / name).read_text(encoding="utf-8")):
            turns = conv.get("conversations") or []
            if turns and turns[0].get("value"):
                out.append(turns[0]["value"])
    out += [
        r["instruction"] for r in json.loads((chat / "alpaca_eval" / "model_outputs_text_davinci_003.json").read_text())
    ]
    out += [json.loads(line)["turns"][0] for line in (chat / "mt_bench" / "question.jsonl").read_text().splitlines()]
    for line in (chat / "stanford_alpaca" / "seed_tasks.jsonl").read_text().splitlines():
        out.append(json.loads(line)["instruction"])
    return [t[:300] for t in out if t.strip()]


def definition_data(kind: str) -> dict:
    from router.eval.quality import _csv

    intents, _ = load_banking()
    if kind == "short":
        for row in _csv(DATA / "intent" / "banking77" / "test.csv"):
            intents[row["category"]].append(row["text"])
    n_in = sum(len(v) for v in intents.values())
    chat = chat_prompts()
    oos = sorted(chat, key=len)[: TOTAL - n_in] if kind == "short" else chat[: TOTAL - n_in]
    return {
        "intents": [{"name": n, "examples": ex, "target": {"reply": n}} for n, ex in intents.items()],
        "out_of_scope": {"target": {"reply": "no"}, "examples": oos},
    }


def main() -> None:
    from embeddings import EmbeddingConfig, EmbeddingService, load_embedder
    from router.intent import parse_definition, train

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("set", nargs="?", choices=["mixed", "short"], default="mixed")
    parser.add_argument("--bulk-threads", type=int, default=None, help="default: every core")
    args = parser.parse_args()
    if not (DATA / "intent" / "banking77").exists():
        raise SystemExit(f"skipped: {DATA} is absent (the shared data sets)")
    data = definition_data(args.set)
    definition = parse_definition(data)
    config = EmbeddingConfig(bulk_threads=args.bulk_threads)  # the gateway's defaults otherwise
    service = EmbeddingService(load_embedder(config))
    embedding: dict = {}
    load = os.getloadavg()
    t0, c0 = time.perf_counter(), time.process_time()
    router = train("time", 1, definition, lambda texts: service.embed_sync(texts, stats=embedding), service.name)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(
        json.dumps(
            {
                "set": args.set,
                "examples": sum(len(i["examples"]) for i in data["intents"]) + len(data["out_of_scope"]["examples"]),
                "intents": len(data["intents"]),
                "out_of_scope_examples": len(data["out_of_scope"]["examples"]),
                "wall_s": round(elapsed, 1),
                "process_cpu_s": round(cpu, 1),
                "embedding": embedding,
                "figures": {k: v for k, v in router.figures.items() if "_s" in k or k in ("examples", "augmented")},
                "load_average_before": load,
                "load_average_after": os.getloadavg(),
                "cpus": os.cpu_count(),
            }
        )
    )
    service.close()


if __name__ == "__main__":
    main()
