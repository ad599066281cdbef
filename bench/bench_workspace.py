"""The workspace on a real archive: a store of N articles (100,000 by default, built from real texts
and rematched with the shipped watchlist, as bench/bench_rematch.py does; reused from --keep DIR),
served by `d24watch serve`, timed page by page (inbox, the busiest entity's page, article pages, a
search with and without filters) first idle, then while `d24watch poll` stores 1,000 new articles
from 100 local feeds into the same database. Prints p50 and p95 per page, side by side.

    python bench/bench_workspace.py [--articles 100000] [--keep DIR] [--requests 40]
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from tests.receiver import free_port  # noqa: E402

from bench_poll import Site, build_site  # noqa: E402
from bench_rematch import build  # noqa: E402


def config_text(bases: list[str]) -> str:
    sources = "".join(
        f'\n[[sources]]\nname = "feed {n}"\nurl = "{b}/feed"\ninterval = "30m"\n' for n, b in enumerate(bases)
    )
    return (
        '[storage]\ndatabase = "state/d24watch.db"\n[fetch]\nallow_private_addresses = true\n'
        '[watch]\nwatchlist = "watchlist.toml"\n[log]\nlevel = "warning"\n'
        '[notify.file]\nmode = "digest"\ndirectory = "state/outbox"\n' + sources
    )


def prepare(folder: Path, articles: int) -> Path:
    database = folder / "state" / "d24watch.db"
    shutil.copy(ROOT / "config" / "watchlist.toml", folder / "watchlist.toml")
    config = folder / "d24watch.toml"
    config.write_text(config_text([]), "utf-8")
    if not database.exists():
        database.parent.mkdir(parents=True, exist_ok=True)
        seconds = build(database, articles)
        print(f"store: {articles:,} articles built in {seconds:.0f} s", file=sys.stderr)
        subprocess.run(
            [sys.executable, "-m", "d24watch", "--config", str(config), "rematch"], check=True, capture_output=True
        )
    subprocess.run([sys.executable, "-m", "d24watch", "--config", str(config), "init"], check=True, capture_output=True)
    return config


def targets(database: Path) -> dict[str, list[str]]:
    conn = sqlite3.connect(database)
    busiest = conn.execute(
        "SELECT entity_id, count(*) FROM article_entities GROUP BY entity_id ORDER BY 2 DESC LIMIT 1"
    ).fetchone()
    ids = [
        r[0] for r in conn.execute("SELECT DISTINCT article_id FROM article_entities ORDER BY article_id DESC LIMIT 40")
    ]
    total = conn.execute("SELECT count(*) FROM articles").fetchone()[0]
    mentions = conn.execute("SELECT count(*) FROM article_entities").fetchone()[0]
    conn.close()
    print(f"store: {total:,} articles, {mentions:,} mentions; busiest entity {busiest[0]} ({busiest[1]:,} mentions)")
    return {
        "inbox": ["/"],
        "entity page": [f"/entity/{busiest[0]}"],
        "article page": [f"/article/{i}" for i in ids],
        "search": ["/search?q=nguyen+van+binh", "/search?q=labour", "/search?q=ch%E1%BB%89+th%E1%BB%8B"],
        "search, filtered": [f"/search?q=police&entity={busiest[0]}&language=en&since=2020-01-01"],
    }


def timed(base: str, paths: list[str], count: int) -> list[float]:
    out = []
    for n in range(count):
        started = time.perf_counter()
        with urllib.request.urlopen(base + paths[n % len(paths)], timeout=30) as answer:
            answer.read()
            assert answer.status == 200
        out.append((time.perf_counter() - started) * 1000)
    return out


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="keep the folder (and reuse a store built there before)")
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="d24watch-workspace-"))
    folder.mkdir(parents=True, exist_ok=True)
    site = Site(build_site(100, 10), 0.05)
    server = None
    try:
        config = prepare(folder, args.articles)
        pages = targets(folder / "state" / "d24watch.db")
        config.write_text(config_text(site.bases), "utf-8")
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "d24watch", "--config", str(config), "serve", "--listen", f"127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        for paths in pages.values():
            timed(base, paths, 2)  # warm the page cache
        idle = {name: timed(base, paths, args.requests) for name, paths in pages.items()}
        poll = subprocess.Popen(
            [sys.executable, "-m", "d24watch", "--config", str(config), "poll"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.0)
        busy: dict[str, list[float]] = {name: [] for name in pages}
        while poll.poll() is None and min(len(v) for v in busy.values()) < args.requests:
            for name, paths in pages.items():
                busy[name].extend(timed(base, paths, 1))
        out, _ = poll.communicate()
        summary = out.strip().splitlines()[-1] if out.strip() else "(no output)"
        print(f"poll during the busy run: {summary}\n")
        print(
            "| page | idle p50 ms | idle p95 ms | during a poll p50 ms | during a poll p95 ms | requests during the poll |"
        )
        print("|---|---:|---:|---:|---:|---:|")
        worst = 0.0
        for name in pages:
            b = busy[name] or [float("nan")]
            worst = max(worst, pct(b, 95))
            print(
                f"| {name} | {pct(idle[name], 50):.0f} | {pct(idle[name], 95):.0f} | {pct(b, 50):.0f} | {pct(b, 95):.0f} | {len(busy[name])} |"
            )
        print(f"\ngoal: p95 under 200 ms while a poll runs: {worst:.0f} ms ({'met' if worst < 200 else 'NOT met'})")
        return 0
    finally:
        if server is not None:
            server.terminate()
            server.communicate(timeout=10)
        site.stop()
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
