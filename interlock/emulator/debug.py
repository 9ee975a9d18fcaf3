"""The ``/emulator/*`` debug routes tests use to script the emulator and read what it saw (JSON in and out).

``GET|DELETE /emulator/requests``: recorded requests ``[{"time", "path", "headers", "body"}]``, oldest first.
``GET /emulator/stats``: counters (received, in flight, cancelled by the client, finish reasons, ...).
``GET|POST|DELETE /emulator/faults``: ``{"fault": "status:503", "count": 2}`` or ``{"faults": ["cut:3",
"reset"]}`` queues faults for the next inference requests; ``DELETE`` empties the queue.
``GET|POST|DELETE /emulator/replies``: ``{"replies": ["I can't.", {"text": "Fine.", "ttft_ms": 300}]}`` queues
exact answers for the next chat/completions requests (a request's ``x-emulator-reply`` header still wins);
``{"text": "", "tool_calls": [{"name": "book", "arguments": "{\"who\": \"Ana\"}"}]}`` answers a chat request
with tool calls (``arguments`` a string or an object), streamed or not, as vLLM does;
``{"choices": ["One.", "Two words."]}`` gives choice ``i`` of an ``n > 1`` request text ``i`` (cycled); a text
given as a list of strings is streamed in exactly those pieces (one token each).
``POST /emulator/health``: ``{"healthy": false}`` makes ``GET /health`` answer 503 (vLLM's dead engine).
``POST /emulator/reset``: counters, records, scripted faults and health back to the start.
"""

from __future__ import annotations

from typing import Any

import orjson

from interlock.emulator import http
from interlock.emulator.engine import Engine
from interlock.emulator.faults import parse_fault
from interlock.emulator.protocol import request_validation_error

Handler = Any


def debug_routes(engine: Engine) -> dict[str, dict[str, Handler]]:
    """The debug routes bound to ``engine``, in the app's ``{path: {method: handler}}`` form."""

    async def requests(scope: dict, receive: Any, send: Any) -> None:
        await http.send_json(send, 200, engine.recorded())

    async def clear_requests(scope: dict, receive: Any, send: Any) -> None:
        engine.recent.clear()
        await http.send_json(send, 200, {"cleared": True})

    async def stats(scope: dict, receive: Any, send: Any) -> None:
        await http.send_json(send, 200, engine.stats())

    async def faults(scope: dict, receive: Any, send: Any) -> None:
        await http.send_json(send, 200, engine.faults.snapshot())

    async def add_faults(scope: dict, receive: Any, send: Any) -> None:
        try:
            data = orjson.loads(await http.read_body(receive) or b"{}")
            specs = data["faults"] if "faults" in data else [data["fault"]] * int(data.get("count", 1))
            parsed = [parse_fault(str(s)) for s in specs]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            await http.send_bytes(send, 400, request_validation_error(f"bad fault script: {exc}").body())
            return
        for fault in parsed:
            engine.faults.script(fault, 1)
        await http.send_json(send, 200, engine.faults.snapshot())

    async def clear_faults(scope: dict, receive: Any, send: Any) -> None:
        engine.faults.clear()
        await http.send_json(send, 200, engine.faults.snapshot())

    async def replies(scope: dict, receive: Any, send: Any) -> None:
        await http.send_json(send, 200, {"scripted": [text for text, _, _ in engine.replies]})

    async def add_replies(scope: dict, receive: Any, send: Any) -> None:
        try:
            items = orjson.loads(await http.read_body(receive) or b"{}")["replies"]
            parsed = []
            for item in items:
                item = {"text": item} if isinstance(item, str) else item
                ttft = item.get("ttft_ms")
                calls = item.get("tool_calls")
                if calls is not None and not all(isinstance(c, dict) and isinstance(c["name"], str) for c in calls):
                    raise ValueError("tool_calls: a list of {name, arguments}")
                per_choice = item.get("choices")
                if per_choice is not None:
                    if not per_choice or not all(_is_text(t) for t in per_choice):
                        raise ValueError("choices: a non-empty list of texts (or lists of pieces), one per choice")
                    text = [t if isinstance(t, str) else [str(p) for p in t if p] for t in per_choice]
                else:
                    text = str(item.get("text", "" if calls else item["text"]))
                parsed.append((text, None if ttft is None else float(ttft) / 1000.0, calls or None))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            await http.send_bytes(send, 400, request_validation_error(f"bad reply script: {exc}").body())
            return
        engine.replies.extend(parsed)
        await http.send_json(send, 200, {"scripted": [text for text, _, _ in engine.replies]})

    async def clear_replies(scope: dict, receive: Any, send: Any) -> None:
        engine.replies.clear()
        await http.send_json(send, 200, {"scripted": []})

    async def set_health(scope: dict, receive: Any, send: Any) -> None:
        try:
            healthy = orjson.loads(await http.read_body(receive) or b"{}").get("healthy", True)
        except (orjson.JSONDecodeError, AttributeError):
            await http.send_bytes(send, 400, request_validation_error('expected {"healthy": bool}').body())
            return
        engine.healthy = bool(healthy)
        await http.send_json(send, 200, {"healthy": engine.healthy})

    async def reset(scope: dict, receive: Any, send: Any) -> None:
        engine.reset()
        engine.healthy = True
        await http.send_json(send, 200, engine.stats())

    return {
        "/emulator/requests": {"GET": requests, "DELETE": clear_requests},
        "/emulator/stats": {"GET": stats},
        "/emulator/faults": {"GET": faults, "POST": add_faults, "DELETE": clear_faults},
        "/emulator/replies": {"GET": replies, "POST": add_replies, "DELETE": clear_replies},
        "/emulator/health": {"POST": set_health},
        "/emulator/reset": {"POST": reset},
    }


def _is_text(t: object) -> bool:
    """A choice's scripted text: a string, or the pieces it streams in (strings)."""
    return isinstance(t, str) or (isinstance(t, list) and all(isinstance(p, str) for p in t))
