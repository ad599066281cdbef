"""Running the real command line against a config, in-process or as a child process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from d24watch.cli import main


@dataclass
class Result:
    code: int
    out: str
    err: str


def d24(capsys: Any, config: Path, *args: str) -> Result:
    """Run d24watch in this process and capture what it printed."""
    capsys.readouterr()
    code = main(["--config", str(config), *args])
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def d24_process(config: Path, *args: str, timeout: float = 300) -> tuple[Result, int]:
    """Run d24watch as a child process; returns its result and the peak resident memory (bytes)
    of it and every process it started, sampled from /proc."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "d24watch", "--config", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak = 0
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        peak = max(peak, tree_rss(proc.pid))
        time.sleep(0.02)
    out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
    return Result(proc.returncode, out, err), peak


def tree_rss(pid: int) -> int:
    """Memory of `pid` and all its descendants, in bytes: the sum of each one's proportional set
    size (PSS), so pages that forked workers share with their parent are counted once, not once per
    process as summed RSS would; RSS where PSS cannot be read."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        total += pss(current) or _rss(current)
        stack.extend(children_of(current))
    return total


def children_of(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            out.extend(int(c) for c in (task / "children").read_text().split())
    except (OSError, ValueError):
        pass
    return out


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def pss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def export(capsys: Any, config: Path) -> list[dict[str, Any]]:
    result = d24(capsys, config, "export")
    assert result.code == 0, result.err
    return [json.loads(line) for line in result.out.splitlines()]


def fetched(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Exported articles without the seed corpus."""
    return [r for r in rows if r["source"] != "seed"]
