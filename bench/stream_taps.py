"""CPU per streamed request of assembling its text when two steps tap the stream (the cache stores the answer,
feedback reads refusals): two ``StreamAssembler`` (each event parsed twice) against the request's one
``gateway.streaming.SharedAssembler`` fed by both taps; and the cost of the shared one when only one step taps.

    PYTHONPATH=$PWD .venv/bin/python bench/stream_taps.py --tokens 64
"""

from __future__ import annotations

import argparse
import os
import time

import orjson

from cache.responses import StreamAssembler
from gateway.streaming import SharedAssembler
from gateway.upstreams.sse import event


def chunks(tokens: int) -> list[bytes]:
    base = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    out = [event(orjson.dumps({**base, "choices": [{"index": 0, "delta": {"content": f" tok{i}"},
                                                    "finish_reason": None}]})) for i in range(tokens)]  # fmt: skip
    out.append(event(orjson.dumps({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})))
    return out


def per_request(make, taps: int, events: list[bytes], n: int) -> float:
    started = time.process_time()
    for _ in range(n):
        assemblers = make()
        for e in events:
            for a in assemblers[:taps] if len(assemblers) > 1 else assemblers * taps:
                a.feed(e)
        for a in assemblers:
            a.body()
    return (time.process_time() - started) / n * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--requests", type=int, default=5000)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    events, n = chunks(args.tokens), args.requests
    for _ in range(args.rounds):
        two = per_request(lambda: [StreamAssembler(True), StreamAssembler(True)], 2, events, n)
        shared = per_request(lambda: [SharedAssembler(True)], 2, events, n)
        one_plain = per_request(lambda: [StreamAssembler(True)], 1, events, n)
        one_shared = per_request(lambda: [SharedAssembler(True)], 1, events, n)
        print(
            f"{args.tokens}-token stream, two taps: {two:.0f} µs CPU with two assemblers, {shared:.0f} µs shared; "
            f"one tap: {one_plain:.0f} µs plain, {one_shared:.0f} µs shared (load {os.getloadavg()[0]:.1f})"
        )


if __name__ == "__main__":
    main()
