"""``/ui``: the ops console's static files (``console/static``), served by the gateway. The files hold no data;
every figure comes from the admin API with the admin token the page asks for, so the pages themselves need no
credentials. Read once from disk, then from memory; paths outside the folder are a 404."""

from __future__ import annotations

from pathlib import Path

from console import STATIC_DIR

_TYPES = {
    ".html": b"text/html; charset=utf-8",
    ".js": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".png": b"image/png",
    ".svg": b"image/svg+xml",
}
_cache: dict[str, tuple[bytes, bytes] | None] = {}


def _load(rel: str) -> tuple[bytes, bytes] | None:
    if rel in _cache:
        return _cache[rel]
    root = STATIC_DIR.resolve()
    path = (root / rel).resolve()
    found = None
    if path.is_relative_to(root) and path.is_file() and path.suffix in _TYPES:
        found = (_TYPES[path.suffix], Path(path).read_bytes())
    if len(_cache) < 256:
        _cache[rel] = found
    return found


async def serve_console(path: str, send) -> bool:
    """Send the file for ``/ui...``; ``False`` when there is none (the caller answers 404)."""
    if path == "/ui":  # the page's relative links need the slash
        await send({"type": "http.response.start", "status": 308, "headers": [(b"location", b"/ui/")]})
        await send({"type": "http.response.body", "body": b""})
        return True
    if path == "/ui/":
        path = "/ui/index.html"
    found = _load(path.removeprefix("/ui/"))
    if found is None:
        return False
    ctype, body = found
    headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode()), (b"cache-control", b"no-cache")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    return True
