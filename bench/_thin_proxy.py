"""The calibration point: the thinnest honest Python proxy (raw ASGI, aiohttp, orjson, no features).

It parses the request body (a real proxy must, to route by model), forwards it over a pooled keep-alive
aiohttp session, and relays the answer, streamed or not. No retries, tracing, records or metrics: what it
costs is the floor any Python gateway on uvicorn pays on this machine, measured in the same run.

    python bench/_thin_proxy.py --upstream http://127.0.0.1:8100 --port 8001
"""

from __future__ import annotations

import argparse

import aiohttp
import orjson
import uvicorn


class ThinProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.session: aiohttp.ClientSession | None = None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await self.session.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["path"] == "/health":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        request = orjson.loads(body)
        headers = {"content-type": "application/json"}
        async with self.session.post(self.upstream + scope["path"], data=body, headers=headers) as response:
            ctype = response.headers.get("content-type", "application/json").encode()
            start = {"type": "http.response.start", "status": response.status, "headers": [(b"content-type", ctype)]}
            if not request.get("stream"):
                raw = await response.read()
                start["headers"].append((b"content-length", str(len(raw)).encode()))
                await send(start)
                await send({"type": "http.response.body", "body": raw})
                return
            await send(start)
            async for chunk in response.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        ThinProxy(args.upstream),
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
