"""Rate-limit headers in OpenAI's format, and the errors a refused request gets.

OpenAI's ``x-ratelimit-reset-*`` values are Go-style durations ("1s", "6m0s", "12ms", "8.64s"):
https://platform.openai.com/docs/guides/rate-limits (rate limits in headers). A sliding window has no
single reset moment; we report when the oldest request in the window leaves it, i.e. the next time
``remaining`` grows (right after an admission into an empty window: "1m0s").
"""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.errors import BudgetExceeded, RateLimited
from gateway.limits._keys import Level
from gateway.limits._scripts import AdmitReply


def go_duration(ms: int) -> str:
    """Milliseconds as a Go ``time.Duration`` string at millisecond precision."""
    if ms <= 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds = str(rest // 1000) if rest % 1000 == 0 else f"{rest / 1000:.3f}".rstrip("0")
    if hours:
        return f"{hours}h{minutes}m{seconds}s"
    if minutes:
        return f"{minutes}m{seconds}s"
    return f"{seconds}s"


def headers(reply: AdmitReply) -> dict[str, str]:
    """The ``x-ratelimit-*`` headers for the tightest level; request or token headers only when limited."""
    out: dict[str, str] = {}
    if reply.req_limit is not None:
        out["x-ratelimit-limit-requests"] = str(reply.req_limit)
        out["x-ratelimit-remaining-requests"] = str(reply.req_remaining)
        out["x-ratelimit-reset-requests"] = go_duration(reply.req_reset_ms or 0)
    if reply.tok_limit is not None:
        out["x-ratelimit-limit-tokens"] = str(reply.tok_limit)
        out["x-ratelimit-remaining-tokens"] = str(reply.tok_remaining)
        out["x-ratelimit-reset-tokens"] = go_duration(reply.tok_reset_ms or 0)
    return out


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _num(value: float | None) -> str:
    return "?" if value is None else f"{value:g}"


def refusal(
    reply: AdmitReply, level: Level, model: str, estimated_tokens: int, estimated_cost: float = 0.0
) -> RateLimited:
    """The error for a denied admission: which limit of which key or team, and when to come back."""
    who = f"{level.kind} {level.label!r}"
    retry = None if reply.retry_ms is None or reply.retry_ms < 0 else reply.retry_ms / 1000
    wait = go_duration(reply.retry_ms or 0)
    hdrs = headers(reply)
    kind = reply.kind
    if kind in ("budget_daily", "budget_monthly"):
        periods = reply.periods
        period, reset = ("daily", periods.day_end) if kind == "budget_daily" else ("monthly", periods.month_end)
        text = f"{who} {period} budget of ${reply.limit or 0:.2f} is spent; resets at {_iso(reset)}"
        if reply.reserved is not None:  # room left, but not for this request's estimated cost
            text = (
                f"{who} {period} budget of ${reply.limit or 0:.2f} cannot cover this request: "
                f"${reply.used or 0:.4f} spent, ${reply.reserved:.4f} reserved by requests in flight, "
                f"this one may cost ${estimated_cost:.4f} (prompt estimate plus max_tokens at the model's prices). "
                + (f"Please try again in {wait}." if (reply.retry_ms or 0) <= 1000 else f"Resets at {_iso(reset)}.")
            )
        return BudgetExceeded(text, retry_after=retry, headers=hdrs)
    if kind == "rpm":
        text = (
            f"Rate limit reached for {who} on requests per minute (RPM) for model {model}: "
            f"limit {_num(reply.limit)}, used {_num(reply.used)}, requested 1. Please try again in {wait}."
        )
    elif kind == "tpm":
        text = (
            f"Rate limit reached for {who} on tokens per minute (TPM) for model {model}: "
            f"limit {_num(reply.limit)}, used {_num(reply.used)}, requested {estimated_tokens}. "
            f"Please try again in {wait}."
        )
    elif kind == "tpm_too_large":
        text = (
            f"Request too large for {who} on tokens per minute (TPM) for model {model}: "
            f"limit {_num(reply.limit)}, requested {estimated_tokens} (prompt estimate plus max_tokens). "
            "Reduce the prompt or max_tokens."
        )
    else:
        text = (
            f"Too many concurrent requests for {who}: limit {_num(reply.limit)} in flight. Please try again in {wait}."
        )
    return RateLimited(text, retry_after=retry, headers=hdrs)
