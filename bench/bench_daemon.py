"""Memory of the daemon over 200 consecutive poll cycles.

`d24watch run` polls 20 local feeds every second; each feed gains two new article pages before
every cycle, so each cycle fetches, extracts, matches and stores about 40 new articles. The memory
of the daemon's whole process tree (PSS, so forked workers' shared pages count once) is sampled
after each cycle; the table shows it at cycles 1, 20, 50, 100, 150 and 200.

    python bench/bench_daemon.py [--cycles 200] [--feeds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers import tree_rss  # noqa: E402
from tests.prose import prose  # noqa: E402

BIN = Path(sys.executable).parent


class GrowingFeeds:
    """Feed N lists its newest 10 of an ever-growing list of articles: two more at each request."""

    def __init__(self, feeds: int) -> None:
        self.counts = [0] * feeds
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                parts = self.path.strip("/").split("/")
                if len(parts) == 2 and parts[1] == "feed":
                    body, kind = owner.feed(int(parts[0])), "application/rss+xml"
                elif len(parts) == 3:
                    body, kind = owner.page(int(parts[0]), int(parts[2])), "text/html; charset=utf-8"
                else:
                    body, kind = b"", "text/plain"
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def feed(self, n: int) -> bytes:
        with self.lock:
            self.counts[n] += 2
            newest = self.counts[n]
        items = "".join(
            f"<item><title>Feed {n} story {k}</title><link>{self.base}/{n}/a/{k}</link><guid>{n}-{k}</guid>"
            f"<pubDate>Mon, 06 May 2024 08:00:00 +0000</pubDate></item>"
            for k in range(max(0, newest - 10), newest)
        )
        return f'<?xml version="1.0"?><rss version="2.0"><channel><title>f{n}</title>{items}</channel></rss>'.encode()

    def page(self, n: int, k: int) -> bytes:
        paragraphs = "".join(f"<p>{p}</p>" for p in prose(n * 100_000 + k, words=600))
        return (
            f"<html><head><title>Feed {n} story {k}</title></head><body><nav>Home World Sport</nav>"
            f"<article><h1>Feed {n} story {k}</h1>{paragraphs}</article><footer>About</footer></body></html>"
        ).encode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--feeds", type=int, default=20)
    args = parser.parse_args()
    site = GrowingFeeds(args.feeds)
    folder = Path(tempfile.mkdtemp(prefix="d24daemon-"))
    (folder / "watchlist.toml").write_bytes((ROOT / "config" / "watchlist.toml").read_bytes())
    sources = "".join(
        f'\n[[sources]]\nname = "feed {n}"\nurl = "{site.base}/{n}/feed"\ninterval = "1s"\n' for n in range(args.feeds)
    )
    config = folder / "d24watch.toml"
    config.write_text(
        '[storage]\ndatabase = "state/d24watch.db"\n[fetch]\nallow_private_addresses = true\n'
        '[watch]\nwatchlist = "watchlist.toml"\n[log]\nformat = "json"\nlevel = "info"\n' + sources
    )
    log = (folder / "run.log").open("w")
    proc = subprocess.Popen(
        [str(BIN / "d24watch"), "--config", str(config), "run", "--listen", "127.0.0.1:0"],
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,
    )
    base = None
    while base is None:
        for line in (folder / "run.log").read_text().splitlines():
            if '"daemon_started"' in line:
                base = json.loads(line)["listen"]
        time.sleep(0.1)
    samples: dict[int, float] = {}
    seen = 0
    started = time.perf_counter()
    try:
        while seen < args.cycles:
            with urllib.request.urlopen(base + "/healthz", timeout=10) as response:
                cycles = json.loads(response.read())["cycles"]
            if cycles > seen:
                seen = cycles
                samples[seen] = tree_rss(proc.pid) / 1e6
                if seen % 20 == 0:
                    print(f"cycle {seen}: {samples[seen]:.0f} MB", flush=True)
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()
    elapsed = time.perf_counter() - started
    offered = sum(site.counts)
    print(
        f"\n{args.feeds} feeds due every second; {offered:,} new articles offered (2 per feed answer); {elapsed:.0f} s\n"
    )
    print("| cycle | memory of the process tree, MB (PSS) |")
    print("|---:|---:|")
    marks = [1, 20, 50, 100, 150, args.cycles]
    for mark in marks:
        nearest = min(samples, key=lambda c: abs(c - mark))
        print(f"| {nearest} | {samples[nearest]:.0f} |")
    at20 = samples[min(samples, key=lambda c: abs(c - 20))]
    last = samples[max(samples)]
    growth = (last - at20) / at20
    print(
        f"\ngoal: growth between cycle 20 and cycle {max(samples)} at most 5%: {growth:+.1%} ({'met' if growth <= 0.05 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
