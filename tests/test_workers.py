"""The worker pool: recycled after its quota of tasks without hanging, a crash is one document's
error, and no worker or forkserver outlives the process that started them."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from tests.conftest import feed_source, rss, write_config
from tests.helpers import children_of, d24
from tests.server import LocalServer, Served, stall

SCRIPT = textwrap.dedent(
    """
    import asyncio, os
    from d24watch.workers import TASKS_PER_CHILD, Workers

    async def main():
        with Workers(2) as workers:
            pids = await asyncio.gather(*(workers.run("x", os.getpid) for _ in range(TASKS_PER_CHILD * 2 * 3)))
        print(len(pids), len(set(pids)))

    if __name__ == "__main__":
        asyncio.run(main())
    """
)


def test_thousands_of_tasks_recycle_the_pool_and_never_hang(tmp_path: Path) -> None:
    """6,000 tasks on 2 workers with a quota of 1,000 each: all finish, on at least three pools' workers.
    (ProcessPoolExecutor's max_tasks_per_child hangs here on Python 3.11, CPython gh-115634.)"""
    script = tmp_path / "many.py"
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    tasks, workers = map(int, done.stdout.split())
    assert tasks == 6000 and workers >= 6


def test_a_worker_that_dies_is_that_documents_error_and_the_next_task_runs(tmp_path: Path) -> None:
    """os._exit in a worker: that call raises ParseError naming the document; later calls succeed."""
    script = tmp_path / "die.py"
    script.write_text(
        textwrap.dedent(
            """
            import asyncio, os
            from d24watch.errors import ParseError
            from d24watch.workers import Workers

            async def main():
                with Workers(1) as workers:
                    try:
                        await workers.run("http://x.example/bomb", os._exit, 3)
                    except ParseError as exc:
                        print("error:", exc)
                    print("next:", await workers.run("y", len, b"abc"))

            if __name__ == "__main__":
                asyncio.run(main())
            """
        )
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "error: http://x.example/bomb: the worker processing this document died" in done.stdout
    assert "next: 3" in done.stdout


def _descendants(pid: int) -> set[int]:
    found, stack = set(), [pid]
    while stack:
        for child in children_of(stack.pop()):
            found.add(child)
            stack.append(child)
    return found


def _running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie waiting to be reaped is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_a_poll_killed_with_sigkill_leaves_no_worker_or_forkserver_behind(
    tmp_path: Path, server: LocalServer, capsys: Any
) -> None:
    """`kill -9` of a poll whose page stalls, once its forkserver and workers are up: within a few
    seconds none of the processes it started is left running."""
    server.routes["/feed"] = Served(
        rss([{"title": "Slow story", "link": server.url("/slow"), "guid": "s"}]).encode(), "application/rss+xml"
    )
    server.routes["/slow"] = stall(60)
    config = write_config(tmp_path, feed_source("Local", server.url("/feed")))
    assert d24(capsys, config, "init").code == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "d24watch", "--config", str(config), "poll"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        started: set[int] = set()
        while time.monotonic() < deadline and not any(path == "/slow" for path, _ in server.requests):
            started |= _descendants(proc.pid)
            time.sleep(0.05)
        time.sleep(0.5)
        started |= _descendants(proc.pid)
        assert len(started) >= 2, f"expected a forkserver and a worker, found {sorted(started)}"
    finally:
        proc.kill()
        proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_running(pid) for pid in started):
        time.sleep(0.1)
    assert [pid for pid in started if _running(pid)] == []
