"""A pool of worker processes for the CPU-bound, memory-hungry stages (parsing, extraction), so
the daemon's own memory stays flat and fetching never waits on extraction."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from d24watch.errors import ParseError
from d24watch.match import Matcher
from d24watch.models import EntityMatch
from d24watch.watchlist import load_watchlist

T = TypeVar("T")
# After this many tasks per worker the whole pool is replaced, so whatever pages leaked goes with it.
# A worker's memory settles within its first hundred pages; replacing the pool costs about half a second.
# (ProcessPoolExecutor's own max_tasks_per_child deadlocks on Python 3.11 to 3.13 once a worker
# retires with tasks still queued, CPython gh-115634, so the pool is recycled here instead.)
TASKS_PER_CHILD = 1000


WATCH_EVERY_S = 0.5  # how often a worker looks whether the process that started the pool is alive
_PR_SET_PDEATHSIG = 1


def _started_at(pid: int) -> str | None:
    """The start time of process `pid` (field 22 of /proc/PID/stat), which tells a process from a
    later one given the same pid; None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(errors="replace")
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 and fields[0] != "Z" else None


def _is_alive(pid: int, started: str | None) -> bool:
    if started is not None:
        return _started_at(pid) == started
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def guard_worker(owner: int, owner_started: str | None) -> None:
    """Run in each worker as it starts: it dies with the process that started the pool, however that
    one dies (SIGKILL included), and takes the forkserver with it. A worker holds the forkserver's
    liveness pipe, so without this neither would ever notice, and both would stay for good."""
    forkserver = os.getppid()
    if sys.platform.startswith("linux"):
        # The kernel kills this worker as soon as its parent, the forkserver, is gone.
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

    def watch() -> None:
        while _is_alive(owner, owner_started):
            time.sleep(WATCH_EVERY_S)
        if os.getppid() == forkserver and forkserver != owner:
            with contextlib.suppress(OSError):
                os.kill(forkserver, signal.SIGKILL)
        os._exit(1)

    threading.Thread(target=watch, name="owner-watch", daemon=True).start()


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
        owner = os.getpid()
        return ProcessPoolExecutor(
            self.size, mp_context=context, initializer=guard_worker, initargs=(owner, _started_at(owner))
        )

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


@lru_cache(maxsize=2)
def _matcher(path: str, modified_ns: int) -> Matcher:
    return Matcher(load_watchlist(Path(path)))


def match_batch(watchlist_path: str, rows: list[tuple[str, str]]) -> list[list[EntityMatch]]:
    """Run in a worker: the watchlist at `watchlist_path` (compiled once per worker and version of
    the file) over (title, text) pairs, for `rematch`."""
    matcher = _matcher(watchlist_path, os.stat(watchlist_path).st_mtime_ns)
    return [matcher.match(title, text) for title, text in rows]
