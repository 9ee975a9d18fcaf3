"""``GET /metrics``: the engine state in Prometheus text format, under vLLM's metric names.

Checked against vLLM's ``vllm/v1/metrics/loggers.py`` (``PrometheusStatLogger``): labels are
``model_name`` (the first served name) and ``engine`` (``"0"``); ``vllm:kv_cache_usage_perc`` is the
current KV gauge and ``vllm:gpu_cache_usage_perc`` its deprecated predecessor, still read by older
routers, so both are exported with the same value; ``vllm:request_success_total`` has one series per
``finished_reason`` (stop, length, abort, error). Rendered by hand (prometheus_client's format, counters
with the ``_total`` suffix) so a scrape costs microseconds and needs no registry.
"""

from __future__ import annotations

from interlock.emulator.engine import Engine, Histogram


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _family(lines: list[str], name: str, kind: str, help_text: str) -> None:
    lines.append(f"# HELP {name} {help_text}")
    lines.append(f"# TYPE {name} {kind}")


def _histogram(lines: list[str], name: str, help_text: str, labels: str, hist: Histogram) -> None:
    _family(lines, name, "histogram", help_text)
    cumulative = 0
    for bound, count in zip(hist.buckets, hist.counts, strict=False):
        cumulative += count
        lines.append(f'{name}_bucket{{{labels},le="{bound}"}} {float(cumulative)}')
    lines.append(f'{name}_bucket{{{labels},le="+Inf"}} {float(hist.count)}')
    lines.append(f"{name}_count{{{labels}}} {float(hist.count)}")
    lines.append(f"{name}_sum{{{labels}}} {hist.sum}")


def render(engine: Engine) -> bytes:
    labels = f'model_name="{_escape(engine.options.served_model_names[0])}",engine="0"'
    lines: list[str] = []
    gauges = (
        ("vllm:num_requests_running", "Number of requests in model execution batches.", engine.running),
        ("vllm:num_requests_waiting", "Number of requests waiting to be processed.", engine.waiting),
        ("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", engine.kv_usage),
        (
            "vllm:gpu_cache_usage_perc",
            "GPU KV-cache usage. 1 means 100 percent usage. DEPRECATED: Use vllm:kv_cache_usage_perc instead.",
            engine.kv_usage,
        ),
    )
    for name, help_text, value in gauges:
        _family(lines, name, "gauge", help_text)
        lines.append(f"{name}{{{labels}}} {float(value)}")
    counters = (
        ("vllm:prompt_tokens_total", "Number of prefill tokens processed.", engine.prompt_tokens_total),
        ("vllm:generation_tokens_total", "Number of generation tokens processed.", engine.generation_tokens_total),
    )
    for name, help_text, value in counters:
        _family(lines, name, "counter", help_text)
        lines.append(f"{name}{{{labels}}} {float(value)}")
    _family(lines, "vllm:request_success_total", "counter", "Count of successfully processed requests.")
    for reason, value in engine.finished.items():
        lines.append(f'vllm:request_success_total{{{labels},finished_reason="{reason}"}} {float(value)}')
    _histogram(
        lines,
        "vllm:time_to_first_token_seconds",
        "Histogram of time to first token in seconds.",
        labels,
        engine.ttft,
    )
    _histogram(
        lines,
        "vllm:e2e_request_latency_seconds",
        "Histogram of e2e request latency in seconds.",
        labels,
        engine.e2e,
    )
    lines.append("")
    return "\n".join(lines).encode()
