"""CPU per chat request of implicit feedback signals in process (``SignalDetector.observe``: message digests, the
last user turn's sketch, the conversation lookups), for conversations of growing length. Streamed answers add the
assembly (``bench/stream_taps.py``).

    PYTHONPATH=$PWD .venv/bin/python bench/feedback_signals.py
"""

from __future__ import annotations

import os
import time

from gateway.feedback.signals import SignalDetector
from gateway.types import Principal, RequestContext


def conversation(turns: int, words: int = 40) -> list[dict]:
    messages = [{"role": "system", "content": "You are a helpful shop assistant. " * 5}]
    for i in range(turns):
        messages.append({"role": "user", "content": f"question {i} " + "about the order " * (words // 3)})
        if i < turns - 1:
            messages.append({"role": "assistant", "content": "an answer " * words})
    return messages


def main() -> None:
    print(f"load {os.getloadavg()}")
    for turns in (1, 5, 20):
        detector = SignalDetector()
        bodies = [{"model": "m", "messages": [*conversation(turns), {"role": "user", "content": f"q{i}"}]}
                  for i in range(1000)]  # fmt: skip
        n = 20_000
        started = time.process_time()
        for i in range(n):
            ctx = RequestContext(f"r{i}", "chat", bodies[i % 1000], "m")
            ctx.principal = Principal(key_id="k1")
            ctx.status = 200
            detector.observe(ctx)
        cpu = (time.process_time() - started) / n * 1e6
        print(f"{turns} user turns ({2 * turns + 1} messages): {cpu:.1f} µs CPU per request")


if __name__ == "__main__":
    main()
