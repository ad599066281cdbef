"""Whether a Time-Stamping Authority that is down slows a poll: 20 local feeds of 5 articles, each
naming a watchlist person (so every page is archived and needs a token), polled three times into
fresh stores, side by side: without a TSA; with a TSA that never answers (`tsa_timeout = 2`); with
a TSA that answers (the loopback RFC 3161 responder of the tests). For each run: the poll cycle's
wall time (what the daemon's poll job does), then the timestamp run's (the daemon's own job).

    python bench/bench_tsa.py [--feeds 20] [--articles 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import article_page, feed_source, rss, write_config  # noqa: E402
from tests.prose import prose  # noqa: E402
from tests.server import LocalServer  # noqa: E402
from tests.tsa import TimestampAuthority  # noqa: E402

from d24watch import commands  # noqa: E402
from d24watch.app import App  # noqa: E402

BINH = "Police in Hanoi arrested Nguyễn Văn Bình, director of legal affairs at MOLISA, under Article 337."


def world(server: LocalServer, feeds: int, articles: int, run: str) -> str:
    sources = ""
    for f in range(feeds):
        items = []
        for a in range(articles):
            path = f"/{run}/f{f}/labour-official-story-number-{a}"
            server.serve(
                path, article_page(f"Story {f}-{a}", [*prose(f * 100 + a)[:2], BINH, f"Run {run}, item {f}-{a}."])
            )
            items.append({"title": f"Story {f}-{a}", "link": server.url(path), "guid": f"{run}-{f}-{a}"})
        server.serve(f"/{run}/feed{f}", rss(items), "application/rss+xml")
        sources += feed_source(f"feed {f}", server.url(f"/{run}/feed{f}"))
    return sources


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=20)
    parser.add_argument("--articles", type=int, default=5)
    args = parser.parse_args()
    server = LocalServer().start()
    tsa = TimestampAuthority()
    server.routes["/tsa"] = tsa.handler
    rows = []
    try:
        for label, mode in (("no TSA", None), ("a TSA that never answers", "down"), ("a TSA that answers", "up")):
            folder = Path(tempfile.mkdtemp(prefix="d24watch-tsa-"))
            extra = ""
            if mode is not None:
                extra = f'\n[evidence]\ntsa_url = "{server.url("/tsa")}"\ntsa_timeout = 2\n'
            tsa.stall_s = 30.0 if mode == "down" else 0.0
            config = write_config(folder, world(server, args.feeds, args.articles, label.split()[1]), extra=extra)
            app = App.load(config)
            commands.init(app)
            started = time.perf_counter()
            reports, _ = commands.poll(app)
            poll_s = time.perf_counter() - started
            started = time.perf_counter()
            stamps = commands.stamp(app)
            stamp_s = time.perf_counter() - started
            new = sum(r.new for r in reports)
            rows.append((label, new, poll_s, stamp_s, stamps.stamped, stamps.waiting))
    finally:
        tsa.stall_s = 0.0
        server.stop()
    print(f"{args.feeds} feeds x {args.articles} articles, every page archived\n")
    print("| run | articles | poll cycle s | timestamp run s | stamped | waiting |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, new, poll_s, stamp_s, stamped, waiting in rows:
        print(f"| {label} | {new} | {poll_s:.2f} | {stamp_s:.2f} | {stamped} | {waiting} |")
    base = rows[0][2]
    down = rows[1][2]
    print(
        f"\ngoal: a TSA that is down does not slow the poll: {down:.2f} s against {base:.2f} s ({'met' if down <= base * 1.25 else 'NOT met'})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
