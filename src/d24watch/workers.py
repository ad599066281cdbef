"""A pool of worker processes for the CPU-bound, memory-hungry stages (parsing, extraction), so
the daemon's own memory stays flat and fetching never waits on extraction."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from types import TracebackType
from typing import Any, TypeVar

from d24watch.errors import ParseError

T = TypeVar("T")
# After this many tasks per worker the whole pool is replaced, so whatever pages leaked goes with it.
# A worker's memory settles within its first hundred pages; replacing the pool costs about half a second.
# (ProcessPoolExecutor's own max_tasks_per_child deadlocks on Python 3.11 to 3.13 once a worker
# retires with tasks still queued, CPython gh-115634, so the pool is recycled here instead.)
TASKS_PER_CHILD = 1000


def _retire(pool: Executor) -> threading.Event:
    """Shut `pool` down in a thread of its own once its tasks are done; the event tells when."""
    done = threading.Event()

    def shut() -> None:
        pool.shutdown(wait=True)
        done.set()

    threading.Thread(target=shut, name="workers-retire", daemon=True).start()
    return done


class Workers:
    def __init__(self, size: int = 0) -> None:
        self.size = size if size > 0 else max(1, os.cpu_count() or 1)
        self._pool: Executor | None = None
        self._given = 0  # tasks given to the current pool
        self._retiring: threading.Event | None = None  # set once the previous pool has finished

    def _start(self) -> Executor:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["trafilatura", "feedparser", "lxml.html", "d24watch.extract", "d24watch.parse"])
        return ProcessPoolExecutor(self.size, mp_context=context)

    async def run(self, url: str, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` in a worker; a worker that dies is reported as that document's error."""
        while True:
            retiring = self._retiring
            if retiring is not None:
                # A thread's event, not a future: the daemon runs one event loop per cycle.
                await asyncio.to_thread(retiring.wait)
                if self._retiring is retiring:
                    self._retiring = None
                continue
            if self._pool is not None and self._given >= TASKS_PER_CHILD * self.size:
                # The old pool finishes what it was given before a new one starts, so there are
                # never two pools' workers in memory at once.
                self._retiring = _retire(self._pool)
                self._pool = None
                continue
            break
        if self._pool is None:
            self._pool = self._start()
            self._given = 0
        self._given += 1
        pool = self._pool
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)
        except BrokenProcessPool:
            if self._pool is pool:
                pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
            raise ParseError(url, "the worker processing this document died (out of memory?)") from None

    def close(self) -> None:
        if self._retiring is not None:
            self._retiring.wait()
            self._retiring = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
