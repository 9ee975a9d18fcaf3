"""The recorder process: ``python -m gateway.recorder``, started by each gateway process (``process.py``).

It does the gateway's bookkeeping I/O where it cannot slow a request: it writes the request records of its
gateway's journal to the database (``records.py``) and posts the gateway's spans to the OTLP collector.
Threads of the gateway process would share its GIL with the event loop, and their batches (SQLAlchemy
inserts, JSON, socket writes) were its p99 latency; a process only competes for the CPU, where the kernel
lets the woken event loop go first.

Protocol, all over pipes from the parent:
- stdin: one JSON line of settings (``Settings`` below), then OTLP/JSON-encoded spans, one per line.
  End of input means the gateway is closing (or died): finish and exit.
- stdout: one JSON line of running totals once it is ready (imports done, database engine made) and then
  whenever they change (``{"written", "rejected", "errors", "spans", "spans_dropped"}``).
- stderr: log lines, into the gateway's own log.

It ignores SIGINT (Ctrl-C reaches the whole process group; the gateway says when to stop by closing stdin)
and treats SIGTERM like the end of input. It exits once its gateway's journal is released and shipped, or
``drain_timeout`` seconds after the end of input if that never happens (what is left stays on disk, and
the next gateway started on the folder replays it).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from gateway.recorder._memory import Trimmer, lean_malloc

log = logging.getLogger("interlock.recorder")

_READ = 1 << 20
#: Span blocks kept while the collector is slow or down (a block is a fraction of a second of spans).
_MAX_BLOCKS = 1200
#: Bytes of spans queued for export at most: past that the reader waits, the pipe fills, and the gateway samples
#: new traces instead (``process.py``). Without it a 6-minute saturation left 190 MB of spans queued here.
_MAX_SPAN_BYTES = 16 << 20


@dataclass(slots=True)
class Settings:
    database_url: str | None = None
    journal_dir: str | None = None
    prefix: str | None = None
    batch_size: int = 500
    interval: float = 0.5
    fsync: bool = False
    otlp_endpoint: str | None = None
    service_name: str = "interlock-gateway"
    drain_timeout: float = 30.0
    log_level: str = "WARNING"
    #: The built-in trace store (``spans_store.py``): the database to write spans to and its settings.
    store_url: str | None = None
    trace_store: dict | None = None
    #: Per-minute rollups (``rollups.py``) kept as records are written; ``None``: records only.
    rollups: dict | None = None


class Recorder:
    def __init__(self, settings: Settings, out) -> None:
        self.settings = settings
        self._out = out
        self._ending = threading.Event()  # end of input or SIGTERM
        self._shipper = None
        self._spans = None
        self._store = _span_store(settings)
        if settings.journal_dir and settings.prefix and settings.database_url:
            from gateway.db import make_engine
            from gateway.recorder.records import JournalShipper
            from gateway.recorder.rollups import inserter_for

            self._engine = make_engine(settings.database_url)
            self._shipper = JournalShipper(
                Path(settings.journal_dir),
                settings.prefix,
                inserter_for(self._engine, settings.rollups),
                batch_size=settings.batch_size,
                fsync=settings.fsync,
            )
        if settings.otlp_endpoint:
            from observability._export import SpanBatcher

            self._spans = SpanBatcher(
                settings.service_name,
                otlp_endpoint=settings.otlp_endpoint,
                max_queue=_MAX_BLOCKS,
                max_bytes=_MAX_SPAN_BYTES,
                block_when_full=True,
            )
        self._trimmer = Trimmer()
        self._reported: tuple = ()

    def end(self) -> None:
        self._ending.set()

    def read_spans(self, fd: int) -> None:
        """Thread: spans from the gateway until the end of input. Whole reads become export blocks with
        a few C calls (newlines to commas), never a Python step per span: this process shares a core
        with its gateway, and every microsecond here is one the gateway may wait for."""
        spans, store = self._spans, self._store
        rest = b""
        while chunk := os.read(fd, _READ):
            if spans is None and store is None:
                continue
            data = rest + chunk if rest else chunk
            cut = data.rfind(b"\n") + 1
            rest = data[cut:]
            if cut:
                block = data[: cut - 1].replace(b"\n", b",")
                if spans is not None:
                    spans.add_block(block, data.count(b"\n", 0, cut))
                if store is not None:
                    store.add_block(block)
        self._ending.set()

    def run(self) -> None:
        s = self.settings
        self._report(force=True)  # ready: the gateway waits for this line before it takes traffic
        ended_at = None
        while True:
            ending = self._ending.is_set()
            if ending and ended_at is None:
                ended_at = time.monotonic()
            done = self._ship()
            self._trimmer.seen(self._work_done())
            self._tick_store()
            self._report()
            if done and ending:  # both: the last spans arrive after the journal is released
                break
            if ended_at is not None and time.monotonic() - ended_at > s.drain_timeout:
                log.warning("recorder: the gateway's journal was not released in time; the next start replays it")
                break
            if ending:  # the gateway is closing: it releases the journal within moments, look again soon
                time.sleep(min(0.05, s.interval))
            else:
                self._ending.wait(s.interval)
        if self._spans is not None:
            self._spans.shutdown()
        if self._store is not None:
            self._store.close()
        if self._shipper is not None:
            self._shipper.release(finished=False)  # a no-op when it finished
        self._report()

    def _ship(self) -> bool:
        if self._shipper is None:
            return True
        try:
            return self._shipper.ship()
        except OSError as exc:  # the folder went away or is unreadable: keep trying, the gateway keeps writing
            log.warning("recorder: journal folder not readable (%s)", type(exc).__name__)
            return False

    def _tick_store(self) -> None:
        if self._store is None:
            return
        try:
            self._store.tick()
        except Exception:  # traces are best effort: the records must keep flowing
            log.exception("trace store: unexpected error")

    def _work_done(self) -> int:
        return (self._shipper.written if self._shipper else 0) + (self._spans.exported if self._spans else 0)

    def _report(self, force: bool = False) -> None:
        sh, sp = self._shipper, self._spans
        totals = (
            sh.written if sh else 0,
            sh.rejected if sh else 0,
            sh.errors if sh else 0,
            sp.exported if sp else 0,
            sp.dropped if sp else 0,
        )
        if force or totals != self._reported:
            self._reported = totals
            keys = ("written", "rejected", "errors", "spans", "spans_dropped")
            try:
                self._out.write(orjson.dumps(dict(zip(keys, totals, strict=True)), option=orjson.OPT_APPEND_NEWLINE))
                self._out.flush()
            except (BrokenPipeError, ValueError):
                pass  # the gateway is gone; the counts were only for its metrics


def _span_store(settings: Settings):
    if not (settings.trace_store and settings.store_url):
        return None
    from gateway.db import make_engine
    from gateway.recorder.spans_store import SpanStore

    # The OTLP queue's cap: past it the reader waits, the pipe fills, and the gateway sheds traces (process.py).
    return SpanStore(make_engine(settings.store_url), settings.trace_store, max_bytes=_MAX_SPAN_BYTES)


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _idle_priority()  # before any thread starts: threads inherit it
    lean_malloc()  # likewise: arenas are per thread
    first = _read_line(0)
    if not first:
        return
    settings = Settings(**orjson.loads(first))
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    recorder = Recorder(settings, sys.stdout.buffer)
    _tune_gc()
    signal.signal(signal.SIGTERM, lambda *_: recorder.end())
    threading.Thread(target=recorder.read_spans, args=(0,), name="spans-in", daemon=True).start()
    recorder.run()
    os._exit(0)  # the span reader may still block on stdin; nothing else is left to finish


def _tune_gc() -> None:
    """Once the imports and engines are made: the collector walked SQLAlchemy's long-lived objects again and again
    while each batch of parsed records filled the young generation, ~10% of the recorder's CPU per record
    (measured on batches of 500). Records hold no reference cycles; nothing here needs prompt collection."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def _idle_priority() -> None:
    """Run only on CPU time the gateway leaves free. Measured on the benchmark's shared core: at normal
    priority the kernel let this process finish slices of up to 5 ms while the woken gateway waited
    (p99 2.4 ms at concurrency 1); at idle priority a waking gateway preempts it at once (p99 1.1 ms).
    Under sustained full load the records wait in the journal on disk, not in memory, and catch up when
    the load eases (``interlock_records_pending`` shows the backlog). Linux: SCHED_IDLE; elsewhere nice 19.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        with contextlib.suppress(OSError):
            os.nice(19)


def _read_line(fd: int) -> bytes:
    """The settings line, read byte by byte so nothing after it is taken from the descriptor."""
    out = bytearray()
    while (b := os.read(fd, 1)) and b != b"\n":
        out += b
    return bytes(out)


if __name__ == "__main__":
    main()
