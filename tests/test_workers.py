"""The worker pool: recycled after its quota of tasks without hanging, and a crash is one
document's error."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

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
