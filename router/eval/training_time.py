"""Training time of a 15,000-example router: banking77's 10,003 training utterances as 77 intents, plus 4,997
chat prompts (ShareGPT, AlpacaEval, MT-bench, Alpaca seed tasks; first 300 characters) as out-of-scope examples.

    .venv/bin/python -m router.eval.training_time

Times ``router.intent.train`` as ``PUT /admin/routers/{name}`` runs it (``EmbeddingService.embed_sync``, one ONNX
thread, nothing cached), split into embedding and fitting (held-out folds, calibration, final fit; one BLAS
thread), each as wall clock and as CPU time of the training thread, with the load average of the machine: on a
shared machine the wall clock is mostly waiting for a core, the CPU time is what the work costs.
"""

from __future__ import annotations

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


def main() -> None:
    from embeddings import EmbeddingConfig, EmbeddingService, load_embedder
    from router.intent import parse_definition, train

    if not (DATA / "intent" / "banking77").exists():
        raise SystemExit(f"skipped: {DATA} is absent (the shared data sets)")
    intents, _ = load_banking()
    n_in = sum(len(v) for v in intents.values())
    oos = chat_prompts()[: TOTAL - n_in]
    definition = parse_definition(
        {
            "intents": [{"name": n, "examples": ex, "target": {"reply": n}} for n, ex in intents.items()],
            "out_of_scope": {"target": {"reply": "no"}, "examples": oos},
        }
    )
    config = EmbeddingConfig()  # the gateway's default: one ONNX Runtime thread
    service = EmbeddingService(load_embedder(config))
    load = os.getloadavg()
    t0, c0 = time.perf_counter(), time.process_time()
    router = train("time", 1, definition, service.embed_sync, service.name)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(
        json.dumps(
            {
                "examples": n_in + len(oos),
                "intents": len(intents),
                "out_of_scope_examples": len(oos),
                "wall_s": round(elapsed, 1),
                "process_cpu_s": round(cpu, 1),
                "onnx_threads": config.threads,
                "figures": router.figures,
                "load_average_before": load,
                "load_average_after": os.getloadavg(),
                "cpus": os.cpu_count(),
            }
        )
    )
    service.close()


if __name__ == "__main__":
    main()
