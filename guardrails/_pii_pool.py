"""Presidio + spaCy in worker processes of their own (``guardrails.pii.workers``), awaited from the event loop.

Why a process and not a thread: Presidio and spaCy are Python-heavy and hold the GIL for most of their time, so
in a thread of the gateway process they make its event loop wake late for every request beside a guarded one,
including requests that need no guard (``bench/guardrails_bench.py``, the ticker rows). In a process of their own
they hold another interpreter's GIL; the event loop only pickles a text out and a few tuples back.

- Processes are spawned (not forked: the gateway has threads, and a forked child inherits their locks) and load
  the analyzer once, in the initializer; ``start()`` waits until every worker has answered, so the models load at
  startup, never on a request.
- A worker that dies (OOM killer, a segfault in a native library, ``kill``) breaks the pool. The requests whose
  analysis was in flight fail (``GuardFailed``: the policy's ``on_error`` decides, closed by default, so nothing
  goes upstream unmasked) and are not retried, since their text may be what killed it. The pool is rebuilt once
  in a thread; requests arriving meanwhile wait for it within their policy's timeout.
- Texts cross the pipe and are never logged; findings come back as ``(type, start, end, score)``.
- ``run`` takes other GIL-heavy work too: the secrets and keywords guards send their regexes over long texts
  here (``GuardContext.offload``, set by the engine), where in a thread they would hold the GIL as spaCy does.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from guardrails.errors import GuardFailed

#: The worker's analyzer and entity list, set by ``_init`` (one per worker process).
_worker: dict[str, Any] = {}


def _init(model_name: str, entities: list[str]) -> None:
    # The gateway decides when its workers stop: a Ctrl-C sent to the process group must not kill them mid-request.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # ...but a gateway killed outright (OOM killer, kill -9) never shuts the pool down, and the worker, which holds
    # both ends of its job queue, would wait for jobs forever: it follows its parent out instead.
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True).start()
    from guardrails._pii import build_analyzer

    _worker["analyzer"] = build_analyzer(model_name)
    _worker["entities"] = entities


def _exit_with(parent_sentinel: int) -> None:
    multiprocessing.connection.wait([parent_sentinel])
    os._exit(0)


def _analyze(text: str) -> list[tuple[str, int, int, float]]:
    from guardrails._pii import analyze_with

    return analyze_with(_worker["analyzer"], _worker["entities"], text)


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as exc:  # the worker's exception may not unpickle in the gateway: send its name only
        raise RuntimeError(type(exc).__name__) from None


def _pid() -> int:
    return os.getpid()


class AnalyzerPool:
    """``workers`` processes, each with its own analyzer. ``start()`` (blocking, at startup), ``await analyze()``."""

    def __init__(self, workers: int, model_name: str, entities: list[str]) -> None:
        self.workers = workers
        self._args = (model_name, entities)
        self._executor: ProcessPoolExecutor | None = None
        self._rebuild: asyncio.Future | None = None
        self._lock = threading.Lock()
        self._closed = False
        #: Pools rebuilt after a worker died, for ``/ready`` and tests; jobs sent to the workers, for tests.
        self.restarts = 0
        self.jobs = 0

    def start(self) -> None:
        """Spawn the workers and wait until each has loaded its analyzer and answered (about 2 s each)."""
        executor = ProcessPoolExecutor(
            self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init, initargs=self._args
        )
        try:
            # A pool spawns a process per submission that finds every worker busy, up to ``workers``; the
            # initializer runs before a worker takes its first job, so distinct pids mean loaded workers.
            seen: set[int] = set()
            for _ in range(20):
                seen |= {f.result(timeout=120) for f in [executor.submit(_pid) for _ in range(self.workers)]}
                if len(seen) >= self.workers:
                    break
            executor.submit(_call, _analyze, "warm up John in Paris").result(timeout=60)
        except BaseException:
            executor.shutdown(wait=False, cancel_futures=True)
            raise
        with self._lock:
            if self._closed:  # closed while this (re)build ran
                old = executor
            else:
                old, self._executor = self._executor, executor
        if old is not None:
            old.shutdown(wait=False, cancel_futures=True)

    async def analyze(self, text: str) -> list[tuple[str, int, int, float]]:
        """Presidio's findings in ``text``, as ``(type, start, end, score)``."""
        return await self.run(_analyze, text)

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` in a worker: ``fn`` and the arguments must pickle (a module-level function, plain data)."""
        if self._closed:
            raise GuardFailed("the pii workers are stopped", guard="pii")
        loop = asyncio.get_running_loop()
        self.jobs += 1
        executor = self._executor
        if executor is None or self._rebuild is not None:
            executor = await self._rebuilt(executor)
        try:
            future = loop.run_in_executor(executor, _call, fn, *args)
        except BrokenProcessPool:  # a worker died before this request: wait for a new pool, then go on
            future = loop.run_in_executor(await self._rebuilt(executor), _call, fn, *args)
        except RuntimeError as exc:  # shut down
            raise GuardFailed("the pii workers are stopped", guard="pii") from exc
        try:
            return await future
        except BrokenProcessPool as exc:  # a worker died while this text was in it: never retried
            self._start_rebuild(executor)
            raise GuardFailed("the pii worker process died", guard="pii") from exc
        except RuntimeError as exc:
            raise GuardFailed(f"the work in the pii worker failed ({exc})", guard="pii") from exc

    async def _rebuilt(self, broken: ProcessPoolExecutor | None) -> ProcessPoolExecutor:
        """The pool that replaces ``broken``, once it is up (a rebuild is started unless one is under way)."""
        rebuild = self._start_rebuild(broken)
        try:
            await asyncio.shield(rebuild)  # one rebuild for every waiter; a waiter's timeout must not cancel it
        except Exception as exc:
            raise GuardFailed(f"the pii workers could not be restarted ({type(exc).__name__})", guard="pii") from exc
        if self._executor is None or self._closed:
            raise GuardFailed("the pii workers are stopped", guard="pii")
        return self._executor

    def _start_rebuild(self, broken: ProcessPoolExecutor | None) -> asyncio.Future:
        rebuild = self._rebuild
        if rebuild is not None and not rebuild.done():
            return rebuild
        if self._executor is not broken and self._executor is not None:  # already replaced by another request
            done = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        self.restarts += broken is not None
        self._rebuild = rebuild = asyncio.ensure_future(asyncio.to_thread(self.start))
        rebuild.add_done_callback(self._rebuild_done)
        return rebuild

    def _rebuild_done(self, rebuild: asyncio.Future) -> None:
        if rebuild is self._rebuild:
            self._rebuild = None
        if not rebuild.cancelled():
            rebuild.exception()  # retrieved: the next request retries the rebuild and reports its failure

    def pids(self) -> list[int]:
        """The live workers' process ids (``/ready`` reports them; an operator can find them in ``top``)."""
        executor = self._executor
        # ``_processes`` is the executor's own table of its workers (stdlib-private, stable since 3.2).
        processes = dict(getattr(executor, "_processes", None) or {})
        return sorted(pid for pid, p in processes.items() if p.is_alive())

    def health(self) -> dict[str, Any]:
        return {"workers": self.workers, "alive": self.pids(), "restarts": self.restarts}

    def close(self) -> None:
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
