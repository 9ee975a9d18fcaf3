"""One embedder for the whole AI layer: guards, the intent router and the semantic cache all import it.

    Embedder            the role: ``embed(texts) -> float32 array (n, dim)``, rows L2-normalised (sync, CPU)
    ├── OnnxEmbedder    a sentence-transformers model exported to ONNX (default: packaged int8 MiniLM-L6-v2)
    └── HashEmbedder    a tiny deterministic stand-in for tests of code that only needs *some* vectors
    EmbeddingService    runs an ``Embedder`` off the event loop, batching concurrent requests into one call
    RequestEmbeddings   a per-request memo: each text is embedded at most once per request, shared by every step

This package never imports ``gateway/`` or FastAPI. Model inference never runs on the event loop: the service
owns one worker thread (ONNX Runtime releases the GIL while it computes) and callers ``await`` its futures.
"""

from embeddings._base import Embedder, EmbeddingError, HashEmbedder
from embeddings._onnx import OnnxEmbedder
from embeddings.config import EmbeddingConfig, load_embedder
from embeddings.service import EmbeddingService, RequestEmbeddings, last_user_text

__all__ = [
    "Embedder",
    "EmbeddingConfig",
    "EmbeddingError",
    "EmbeddingService",
    "HashEmbedder",
    "OnnxEmbedder",
    "RequestEmbeddings",
    "last_user_text",
    "load_embedder",
]
