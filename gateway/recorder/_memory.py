"""The recorder's memory: give back to the OS what a backlog made it take.

The recorder handles its backlog in bounded pieces (1 MiB pipe reads, a bounded span queue, journal segments
read a batch at a time), so what it holds at once is bounded. What it *keeps* is glibc's business: a freed
1 MiB read raises glibc's mmap threshold, later reads then come from the heap, and a heap, mostly the
per-thread arenas of its reader and export threads, is not returned to the OS when freed. Measured before
this: 67 MB at start, 260 MB after a 6-minute saturation, and it stayed there. So big buffers always get
their own mappings (returned when freed), threads share two arenas, and after a large piece of work the free
heap is trimmed. Not glibc (musl, macOS): no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("interlock.recorder")

_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
#: Above this a buffer is a mapping of its own (glibc's starting value, kept instead of letting it grow to 32 MiB).
MMAP_THRESHOLD = 256 * 1024
#: Rows written plus spans exported after which free heap memory is given back (~30 MB of data went through).
TRIM_AFTER = 50_000

_libc = None


def _glibc():
    global _libc
    if _libc is None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            libc.malloc_trim, libc.mallopt  # noqa: B018  # glibc only
            _libc = libc
        except (OSError, AttributeError):
            _libc = False
    return _libc or None


def lean_malloc() -> None:
    """At start, before threads: fixed mmap threshold, two arenas."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        libc.mallopt(_M_ARENA_MAX, 2)


def trim() -> None:
    """Return free heap pages of every arena to the OS (a few ms for a large heap: only after large work)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


class Trimmer:
    """Trims once ``after`` rows and spans went through since the last trim (``seen``: the running total)."""

    def __init__(self, after: int = TRIM_AFTER) -> None:
        self.after = after
        self._last = 0

    def seen(self, total: int) -> None:
        if total - self._last >= self.after:
            self._last = total
            trim()
