"""How an emulator process behaves (``EmulatorOptions``) and the per-request overrides read from headers.

One process serves many test cases: every latency and fault knob can be overridden for a single
request with an ``x-emulator-*`` header, so tests do not need one emulator per scenario.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

#: Request headers that override a knob for one request (values as on the command line).
HEADER_TTFT_MS = b"x-emulator-ttft-ms"
HEADER_TPOT_MS = b"x-emulator-tpot-ms"
HEADER_OUTPUT_TOKENS = b"x-emulator-output-tokens"
HEADER_FAULT = b"x-emulator-fault"
#: Exact reply text (split into word tokens); lets a test make the "model" say something specific.
HEADER_REPLY = b"x-emulator-reply"


@dataclass(slots=True)
class EmulatorOptions:
    """Everything an emulator process is configured with; the CLI flags map one to one."""

    host: str = "127.0.0.1"
    """Address to listen on; loopback by default (tests and benchmarks never need more)."""
    port: int = 8100
    """Port to listen on; ``EmulatorServer`` binds it itself, so 0 picks a free one there."""
    model: str = "interlock/emulator"
    """The model path vLLM would load; shown as ``root`` in ``/v1/models``."""
    served_model_names: list[str] = field(default_factory=list)
    """Names clients may ask for; empty means ``[model]`` as in vLLM's ``--served-model-name``."""
    max_model_len: int = 8192
    """Context window: prompt plus output tokens beyond this are refused with 400, as vLLM does."""
    max_num_seqs: int = 256
    """Requests generating at once; more wait in a FIFO queue (``vllm:num_requests_waiting``)."""
    kv_cache_tokens: int = 65536
    """KV-cache capacity in tokens; ``vllm:kv_cache_usage_perc`` = tokens of running requests / this."""
    ttft_ms: float = 0.0
    """Time to first token. 0 answers as fast as possible."""
    tpot_ms: float = 0.0
    """Time per output token after the first. 0 sends all tokens without sleeping."""
    output_tokens: int = 16
    """Tokens the model "wants" to say before its end-of-sequence; ``max_tokens`` below it gives ``length``."""
    max_logprobs: int = 20
    """Most alternatives per token a request may ask for (vLLM's ``--max-logprobs``); more is a 400."""
    embedding_dim: int = 384
    """Length of ``/v1/embeddings`` vectors; a request's ``dimensions`` may ask for fewer."""
    faults: list[str] = field(default_factory=list)
    """Fault kinds drawn at random with probability ``fault_rate`` (see ``faults.py`` for the syntax)."""
    fault_rate: float = 0.0
    fault_seed: int | None = None
    """Seed for the fault draw so a benchmark with random faults can be replayed."""
    record_requests: int = 200
    """How many recent request bodies ``GET /emulator/requests`` keeps."""
    version: str = "0.11.0"
    """What ``GET /version`` reports; vLLM's own version string format."""
    log_level: str = "warning"
    """Uvicorn's log level; the access log is always off (it would cost more than a request)."""

    def __post_init__(self) -> None:
        if not self.served_model_names:
            self.served_model_names = [self.model]
        if self.max_num_seqs < 1:
            raise ValueError("max_num_seqs must be at least 1")
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError("fault_rate must be between 0 and 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EmulatorOptions:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise TypeError(f"unknown emulator options: {sorted(unknown)}")
        return cls(**data)


@dataclass(slots=True)
class RequestKnobs:
    """The knobs in force for one request: process options overridden by ``x-emulator-*`` headers."""

    ttft_s: float
    tpot_s: float
    output_tokens: int
    fault: str | None = None
    #: The exact reply; a list: one per choice (choice ``i`` says text ``i % len``), from a scripted reply; a choice's
    #: text may be a list of the pieces it streams in.
    reply: str | list[str | list[str]] | None = None
    #: A scripted reply's tool calls (``[{"name", "arguments"}]``), chat only.
    tool_calls: list[dict[str, Any]] | None = None


def knobs_for(options: EmulatorOptions, headers: list[tuple[bytes, bytes]]) -> RequestKnobs:
    """Read the per-request overrides. Headers arrive lower-cased from the ASGI server."""
    knobs = RequestKnobs(options.ttft_ms / 1000.0, options.tpot_ms / 1000.0, options.output_tokens)
    for name, value in headers:
        if not name.startswith(b"x-emulator-"):
            continue
        try:
            if name == HEADER_TTFT_MS:
                knobs.ttft_s = max(0.0, float(value)) / 1000.0
            elif name == HEADER_TPOT_MS:
                knobs.tpot_s = max(0.0, float(value)) / 1000.0
            elif name == HEADER_OUTPUT_TOKENS:
                knobs.output_tokens = max(0, int(value))
            elif name == HEADER_FAULT:
                knobs.fault = value.decode("latin-1").strip() or None
            elif name == HEADER_REPLY:
                knobs.reply = value.decode("utf-8", "replace")
        except ValueError as exc:
            raise ValueError(f"bad {name.decode()} header: {value!r}") from exc
    return knobs
