"""Parse and check request bodies the way vLLM does, without pydantic on the request path.

Checked against vLLM's ``ChatCompletionRequest`` / ``CompletionRequest`` validators, ``SamplingParams``
argument checks, ``OpenAIServing._check_model`` and ``_validate_input`` (context length). Messages
follow vLLM's wording; the status and ``type`` follow which layer raises them (see ``protocol.py``).
Note vLLM answers with the *first* served model name whatever alias the client asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from interlock.emulator.generation import chat_prompt_tokens, content_text, prompt_tokens
from interlock.emulator.options import EmulatorOptions
from interlock.emulator.protocol import VLLMError, model_not_found, request_validation_error


@dataclass(slots=True)
class GenerationRequest:
    """A checked chat or completions request: one entry per prompt in the per-prompt lists."""

    kind: str  # "chat" | "completions"
    model: str
    stream: bool
    n: int
    sources: list[str]
    """Text the echo draws its words from (the last user message, or the prompt)."""
    echo_texts: list[str]
    """Text put before the output when ``echo`` is on (completions: the prompt)."""
    prompt_tokens: list[int]
    limits: list[int]
    """Effective max tokens per prompt: the request's, capped by the context window."""
    seed: int | None = None
    stop: list[str] | None = None
    include_stop: bool = False
    ignore_eos: bool = False
    min_tokens: int = 0
    logprobs: int | None = None
    """``None``: no logprobs; else how many top alternatives per token."""
    include_usage: bool = False
    continuous_usage: bool = False


_LABELS = {int: "integer", float: "number", bool: "boolean", str: "string", list: "list", dict: "dictionary"}


def _field(body: dict, name: str, kind: type | tuple[type, ...], default: Any, schema: str) -> Any:
    """``body[name]`` if it has the right JSON type, ``default`` if absent or null; else vLLM's 400."""
    value = body.get(name)
    if value is None:
        return default
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    if not ok:
        label = _LABELS.get(kind, "value") if isinstance(kind, type) else "value"
        raise request_validation_error(
            f"1 validation error for {schema}\n{name}\n  Input should be a valid {label} "
            f"[input_value={value!r}, input_type={type(value).__name__}]"
        )
    return value


def resolve_model(body: dict, options: EmulatorOptions) -> str:
    requested = body.get("model")
    if requested and requested not in options.served_model_names:
        raise model_not_found(str(requested))
    return options.served_model_names[0]


def _sampling(body: dict, schema: str, out: GenerationRequest) -> None:
    n = _field(body, "n", int, 1, schema)
    if n < 1:
        raise VLLMError(f"n must be at least 1, got {n}.")
    temperature = _field(body, "temperature", float, None, schema)
    if temperature is not None and temperature < 0:
        raise VLLMError(f"temperature must be non-negative, got {temperature}.")
    top_p = _field(body, "top_p", float, None, schema)
    if top_p is not None and not 0 < top_p <= 1:
        raise VLLMError(f"top_p must be in (0, 1], got {top_p}.")
    stop = _field(body, "stop", (str, list), [], schema)
    out.n = n
    out.stop = [stop] if isinstance(stop, str) else [s for s in stop if isinstance(s, str)]
    out.seed = _field(body, "seed", int, None, schema)
    out.include_stop = bool(_field(body, "include_stop_str_in_output", bool, False, schema))
    out.ignore_eos = bool(_field(body, "ignore_eos", bool, False, schema))
    out.min_tokens = _field(body, "min_tokens", int, 0, schema)
    out.stream = bool(_field(body, "stream", bool, False, schema))
    options = _field(body, "stream_options", dict, None, schema)
    if options and not out.stream:
        raise request_validation_error("Stream options can only be defined when `stream=True`.", param="stream_options")
    if options is not None and out.stream:
        # vLLM's StreamOptions.include_usage defaults to True once stream_options is sent at all.
        out.include_usage = bool(options.get("include_usage", True))
        out.continuous_usage = out.include_usage and bool(options.get("continuous_usage_stats"))


def _cap_logprobs(requested: int | None, options: EmulatorOptions) -> None:
    """vLLM refuses more alternatives than ``max_logprobs``; unchecked, ``logprobs: 2**63`` built a list that
    long for every token (the emulator hung and grew to 4 GB)."""
    if requested is not None and requested > options.max_logprobs:
        raise VLLMError(
            f"Requested sample logprobs of {requested}, which is greater than max allowed: {options.max_logprobs}"
        )


def _limit(requested: int | None, prompt: int, options: EmulatorOptions, *, allow_zero: bool = False) -> int:
    if requested is not None and requested < (0 if allow_zero else 1):
        raise VLLMError(f"max_tokens must be at least 1, got {requested}.")
    window = options.max_model_len
    if prompt >= window:
        raise VLLMError(
            f"This model's maximum context length is {window} tokens. However, your request has "
            f"{prompt} input tokens. Please reduce the length of the input messages. "
            f"(parameter=input_tokens, value={prompt})",
            param="input_tokens",
        )
    if requested is not None and prompt + requested > window:
        raise VLLMError(
            f"'max_tokens' or 'max_completion_tokens' is too large: {requested}. This model's maximum "
            f"context length is {window} tokens and your request has {prompt} input tokens "
            f"({requested} > {window} - {prompt}). (parameter=max_tokens, value={requested})",
            param="max_tokens",
        )
    return window - prompt if requested is None else requested


def _messages(body: dict, schema: str) -> list[dict]:
    """A chat's ``messages`` (chat completions, and vLLM's chat-style embeddings): a list of objects, else 400."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise request_validation_error(f"1 validation error for {schema}\nmessages\n  Field required")
    return messages


def parse_chat(body: dict, options: EmulatorOptions) -> GenerationRequest:
    schema = "ChatCompletionRequest"
    messages = _messages(body, schema)
    out = GenerationRequest("chat", "", False, 1, [], [], [], [])
    _sampling(body, schema, out)
    if body.get("tool_choice") not in (None, "none") and not body.get("tools"):
        raise request_validation_error("When using `tool_choice`, `tools` must be set.")
    top = _field(body, "top_logprobs", int, None, schema)
    want_logprobs = bool(_field(body, "logprobs", bool, False, schema))
    if top is not None and top < 0 and top != -1:
        raise request_validation_error("`top_logprobs` must be a positive value or -1.", param="top_logprobs")
    if top is not None and top != 0 and not want_logprobs:
        raise request_validation_error(
            "when using `top_logprobs`, `logprobs` must be set to true.", param="top_logprobs"
        )
    out.logprobs = (top if top and top > 0 else 0) if want_logprobs else None
    _cap_logprobs(out.logprobs, options)
    out.model = resolve_model(body, options)
    user = [m for m in messages if m.get("role") == "user"] or messages
    out.sources = [content_text(user[-1].get("content")) if user else ""]
    last = messages[-1] if messages else {}
    echo = bool(_field(body, "echo", bool, False, schema)) and last.get("role") == "assistant"
    out.echo_texts = [content_text(last.get("content")) if echo else ""]
    prompt = chat_prompt_tokens(messages)
    out.prompt_tokens = [prompt]
    # vLLM: ``max_completion_tokens or max_tokens``, so a 0 falls through to the other field.
    requested = _field(body, "max_completion_tokens", int, None, schema) or _field(
        body, "max_tokens", int, None, schema
    )
    out.limits = [_limit(requested, prompt, options)]
    return out


def _prompts(body: dict) -> list[str | list[int]]:
    prompt = body.get("prompt")
    if prompt is None or prompt == "" or prompt == []:
        raise request_validation_error("Either prompt or prompt_embeds must be provided and non-empty.")
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, list) and all(isinstance(t, int) for t in prompt):
        return [prompt]
    if isinstance(prompt, list) and all(isinstance(p, (str, list)) for p in prompt):
        return list(prompt)
    raise request_validation_error("1 validation error for CompletionRequest\nprompt\n  Input should be valid")


def parse_completion(body: dict, options: EmulatorOptions) -> GenerationRequest:
    schema = "CompletionRequest"
    prompts = _prompts(body)
    out = GenerationRequest("completions", "", False, 1, [], [], [], [])
    _sampling(body, schema, out)
    logprobs = _field(body, "logprobs", int, None, schema)
    if logprobs is not None and logprobs < 0:
        raise request_validation_error("`logprobs` must be a positive value.", param="logprobs")
    _cap_logprobs(logprobs, options)
    out.logprobs = logprobs
    out.model = resolve_model(body, options)
    if body.get("suffix") is not None:
        raise VLLMError("suffix is not currently supported")
    echo = bool(_field(body, "echo", bool, False, schema))
    requested = _field(body, "max_tokens", int, 16, schema)
    for prompt in prompts:
        text = prompt if isinstance(prompt, str) else " ".join(f"t{t}" for t in prompt)
        count = prompt_tokens(prompt)
        out.sources.append(text)
        out.echo_texts.append(text if echo else "")
        out.prompt_tokens.append(count)
        out.limits.append(_limit(requested, count, options, allow_zero=echo))
    return out


def parse_embedding(body: dict, options: EmulatorOptions) -> tuple[str, list[str], list[int], str, int | None]:
    """``(model, texts, token counts, encoding_format, dimensions)`` of an embeddings request."""
    schema = "EmbeddingCompletionRequest"
    model = resolve_model(body, options)
    if "messages" in body and isinstance(body["messages"], list):  # vLLM's chat-style embeddings
        messages = _messages(body, "EmbeddingChatRequest")
        texts = ["\n".join(content_text(m.get("content")) for m in messages)]
        counts = [chat_prompt_tokens(messages)]
    else:
        raw = body.get("input")
        if raw is None or raw == "" or raw == []:
            raise request_validation_error(f"1 validation error for {schema}\ninput\n  Field required")
        items = [raw] if isinstance(raw, str) or (isinstance(raw, list) and isinstance(raw[0], int)) else raw
        if not isinstance(items, list) or not all(isinstance(i, (str, list)) for i in items):
            raise request_validation_error(f"1 validation error for {schema}\ninput\n  Input should be valid")
        texts = [i if isinstance(i, str) else " ".join(map(str, i)) for i in items]
        counts = [prompt_tokens(i) for i in items]
    for count in counts:
        if count > options.max_model_len:
            raise VLLMError(
                f"This model's maximum context length is {options.max_model_len} tokens. However, you "
                f"requested {count} tokens in the input for embedding generation. Please reduce the length "
                f"of the input. (parameter=input_tokens, value={count})",
                param="input_tokens",
            )
    fmt = _field(body, "encoding_format", str, "float", schema)
    if fmt not in ("float", "base64"):
        raise request_validation_error(
            f"1 validation error for {schema}\nencoding_format\n  Input should be 'float' or 'base64'"
        )
    dimensions = _field(body, "dimensions", int, None, schema)
    if dimensions is not None and not 1 <= dimensions <= options.embedding_dim:
        raise VLLMError(
            f"Dimensions must be between 1 and {options.embedding_dim}, got {dimensions}.", param="dimensions"
        )
    return model, texts, counts, fmt, dimensions
