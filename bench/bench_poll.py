"""Polling N local feeds of M new articles each (every answer 50 ms late), side by side:

- the floor: trafilatura alone over the same pages, on all cores, no network;
- d24watch: `d24watch poll` (fetch, extract, dedupe, match, store, queue alerts);
- the naive loop: httpx + feedparser + trafilatura, one request after another;
- rss2email (`r2e run --no-send`), for the feed stage only (it never fetches the pages);
- d24watch re-polling when nothing changed (every feed answers 304).

Each runs in a child process; wall time and peak resident memory of its whole process tree are
measured from here. Pages are real news templates from ../shared/corpora/extraction with their
paragraphs replaced by unique text (synthetic pages when the corpus is absent).

    python bench/bench_poll.py [--feeds 100] [--articles 10] [--delay 0.05]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers import tree_rss  # noqa: E402
from tests.prose import prose  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpora" / "extraction"
BIN = Path(sys.executable).parent


# -- pages ------------------------------------------------------------------------------------------


def templates() -> list[bytes]:
    pages = sorted(CORPUS.glob("*/html/*.htm*")) if CORPUS.is_dir() else []
    return [p.read_bytes() for p in pages]


def make_page(template: bytes | None, seed: int) -> bytes:
    """A real page's markup with every paragraph's text replaced by unique prose."""
    import lxml.html

    paragraphs = prose(seed, words=700)
    title = " ".join(paragraphs[0].split()[:8]).rstrip(".")
    if template is None:
        body = "".join(f"<p>{p}</p>" for p in paragraphs)
        html = (
            f"<html><head><title>{title}</title></head><body><nav>Home News World Sport</nav>"
            f"<article><h1>{title}</h1>{body}</article><footer>Contact About Privacy</footer></body></html>"
        )
        return html.encode()
    doc = lxml.html.fromstring(template)
    sentences = " ".join(paragraphs).split(". ")
    cursor = 0

    def fresh(text: str | None) -> str | None:
        # Every run of words long enough to be content gets unique words of about the same length.
        nonlocal cursor
        if not text or len(text.strip()) < 25:
            return text
        words: list[str] = []
        while len(" ".join(words)) < len(text.strip()):
            words += sentences[cursor % len(sentences)].split()
            cursor += 1
        return " ".join(words)[: max(25, len(text.strip()))] + " "

    for link in doc.xpath("//link[@rel='canonical'] | //meta[@property='og:url']"):
        link.getparent().remove(link)  # the template's own address would make every copy one article
    body = doc.find("body")
    for node in (body if body is not None else doc).iter():
        if node.tag in ("script", "style") or not isinstance(node.tag, str):
            continue
        node.text = fresh(node.text)
        node.tail = fresh(node.tail)
    for node in doc.iter("title", "h1"):
        for child in list(node):
            node.remove(child)
        node.text = title
    out: bytes = lxml.html.tostring(doc, encoding="utf-8")
    return out


def build_site(feeds: int, articles: int) -> dict[int, dict[str, bytes]]:
    """Per feed: the feed itself (at /feed) and its pages (at /a/N); absolute links are filled in later."""
    pool = templates()
    site: dict[int, dict[str, bytes]] = {}
    for f in range(feeds):
        routes = {}
        for a in range(articles):
            seed = f * 1000 + a
            routes[f"/a/{a}"] = make_page(pool[seed % len(pool)] if pool else None, seed)
        site[f] = routes
    return site


# -- servers ------------------------------------------------------------------------------------------


class Site:
    """One server per feed, each on its own loopback address 127.0.0.N (as feeds live on their own
    hosts), each answer `delay` seconds late; feeds answer 304 to their ETag."""

    def __init__(self, pages: dict[int, dict[str, bytes]], delay: float) -> None:
        self.servers: list[ThreadingHTTPServer] = []
        self.bases: list[str] = []
        self.requests = 0
        lock = threading.Lock()
        owner = self
        for f, routes in pages.items():
            host = f"127.0.{1 + f // 250}.{1 + f % 250}"

            class Handler(BaseHTTPRequestHandler):
                protocol_version = "HTTP/1.1"
                table = routes

                def log_message(self, format: str, *args: object) -> None:
                    pass

                def do_GET(self) -> None:
                    with lock:
                        owner.requests += 1
                    time.sleep(delay)
                    body = self.table.get(self.path)
                    if body is None:
                        self.send_response(404)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    etag = '"' + hashlib.md5(body).hexdigest() + '"'
                    if self.path == "/feed" and self.headers.get("If-None-Match") == etag:
                        self.send_response(304)
                        self.send_header("ETag", etag)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    kind = "application/rss+xml" if self.path == "/feed" else "text/html; charset=utf-8"
                    self.send_response(200)
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(body)))
                    self.send_header("ETag", etag)
                    self.end_headers()
                    self.wfile.write(body)

            server = ThreadingHTTPServer((host, 0), Handler)
            server.daemon_threads = True
            base = f"http://{host}:{server.server_address[1]}"
            routes["/feed"] = feed_xml(base, sorted(k for k in routes if k.startswith("/a/")))
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self.servers.append(server)
            self.bases.append(base)

    def stop(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()


def feed_xml(base: str, paths: list[str]) -> bytes:
    items = "".join(
        f"<item><title>Story {p.rsplit('/', 1)[1]} of {base}</title><link>{base}{p}</link><guid>{base}{p}</guid>"
        f"<pubDate>Mon, 06 May 2024 08:00:00 +0000</pubDate></item>"
        for p in paths
    )
    return f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{base}</title>{items}</channel></rss>'.encode()


# -- the contenders, each run as a child process ---------------------------------------------------


def _extract_one(path: str) -> int:
    import trafilatura

    text = trafilatura.extract(Path(path).read_bytes(), include_comments=False)
    return len(text or "")


def child_floor(folder: str) -> None:
    """trafilatura alone over every page on disk, one process per core."""
    files = sorted(str(p) for p in Path(folder).glob("*.html"))
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        chars = sum(pool.map(_extract_one, files, chunksize=8))
    print(json.dumps({"pages": len(files), "chars": chars}))


def child_naive(urls_file: str) -> None:
    """One request after another: feed, then each page, extracted at once."""
    import feedparser
    import httpx
    import trafilatura

    pages = 0
    with httpx.Client(timeout=20) as client:
        for url in Path(urls_file).read_text().split():
            feed = feedparser.parse(client.get(url).content)
            for entry in feed.entries:
                trafilatura.extract(client.get(entry.link).content, include_comments=False)
                pages += 1
    print(json.dumps({"pages": pages}))


def measure(command: list[str], **kw: object) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Wall seconds and peak MB of the process tree of `command`."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)  # type: ignore[call-overload]
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(proc.pid))
        time.sleep(0.05)
    wall = time.perf_counter() - started
    out, err = proc.communicate()
    result = subprocess.CompletedProcess(command, proc.returncode, out, err)
    if proc.returncode != 0:
        raise SystemExit(f"{command[:4]} failed:\n{err[-2000:]}")
    return wall, peak / 1e6, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--feeds", type=int, default=100)
    parser.add_argument("--articles", type=int, default=10)
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--skip-naive", action="store_true")
    args = parser.parse_args()

    source = "corpus templates" if CORPUS.is_dir() else "synthetic pages (../shared/corpora absent)"
    print(f"building {args.feeds * args.articles:,} pages from {source}...", flush=True)
    pages = build_site(args.feeds, args.articles)
    site = Site(pages, args.delay)
    folder = Path(tempfile.mkdtemp(prefix="d24bench-"))
    rows: list[tuple[str, float, float, str]] = []
    try:
        page_dir = folder / "pages"
        page_dir.mkdir()
        for f, routes in pages.items():
            for path, body in routes.items():
                if path.startswith("/a/"):
                    (page_dir / f"{f}-{path.rsplit('/', 1)[1]}.html").write_bytes(body)
        urls = folder / "feeds.txt"
        urls.write_text("\n".join(f"{b}/feed" for b in site.bases))
        me = [sys.executable, __file__]

        wall, peak, _ = measure([*me, "--child-floor", str(page_dir)])
        floor = wall
        rows.append(("floor: trafilatura alone, all cores, no network", wall, peak, "1.00"))

        config = write_config(folder, site.bases)
        d24 = [str(BIN / "d24watch"), "--config", str(config)]
        subprocess.run([*d24, "init"], check=True, capture_output=True)
        before = site.requests
        wall, peak, result = measure([*d24, "poll"])
        poll_wall, poll_peak = wall, peak
        stored = result.stdout.strip().splitlines()[-1]
        rows.append((f"d24watch poll ({site.requests - before:,} requests)", wall, peak, f"{wall / floor:.2f}"))

        wall, peak, _ = measure([*d24, "poll"])
        repoll = wall
        rows.append(("d24watch re-poll, every feed 304", wall, peak, f"{wall / floor:.2f}"))

        naive = None
        if not args.skip_naive:
            wall, peak, _ = measure([*me, "--child-naive", str(urls)])
            naive = wall
            rows.append(("naive loop: httpx + feedparser + trafilatura, sequential", wall, peak, f"{wall / floor:.2f}"))

        r2e = shutil.which("r2e", path=str(BIN))
        if r2e:
            cfg, data = folder / "r2e.cfg", folder / "r2e.json"
            base = [r2e, "-c", str(cfg), "-d", str(data)]
            subprocess.run([*base, "new", "bench@example.org"], check=True, capture_output=True)
            for n, b in enumerate(site.bases):
                subprocess.run([*base, "add", f"f{n}", f"{b}/feed"], check=True, capture_output=True)
            wall, peak, _ = measure([*base, "run", "--no-send"])
            rows.append(("rss2email run --no-send (feeds only, no pages)", wall, peak, f"{wall / floor:.2f}"))
        else:
            rows.append(("rss2email: not installed (pip install rss2email)", 0.0, 0.0, "-"))
    finally:
        site.stop()
        shutil.rmtree(folder, ignore_errors=True)

    print(
        f"\n{args.feeds} feeds x {args.articles} new articles, each answer {args.delay * 1000:.0f} ms late; {os.cpu_count()} cores"
    )
    print(f"d24watch: {stored}\n")
    print(f"| {'run':<58} | {'wall s':>7} | {'peak MB':>7} | {'x floor':>7} |")
    print(f"|{'-' * 60}|{'-' * 9}:|{'-' * 9}:|{'-' * 9}:|")
    for name, wall, peak, ratio in rows:
        print(f"| {name:<58} | {wall:>7.2f} | {peak:>7.0f} | {ratio:>7} |")
    print()
    print(f"goal: poll <= 1.5 x floor: {poll_wall / floor:.2f} ({'met' if poll_wall <= 1.5 * floor else 'NOT met'})")
    if naive:
        print(
            f"goal: poll >= 3 x faster than the naive loop: {naive / poll_wall:.1f} ({'met' if naive >= 3 * poll_wall else 'NOT met'})"
        )
    print(f"goal: poll peak <= 300 MB: {poll_peak:.0f} ({'met' if poll_peak <= 300 else 'NOT met'})")
    print(f"goal: re-poll of {args.feeds} unchanged feeds <= 3 s: {repoll:.2f} ({'met' if repoll <= 3 else 'NOT met'})")


def write_config(folder: Path, bases: list[str]) -> Path:
    (folder / "watchlist.toml").write_bytes((ROOT / "config" / "watchlist.toml").read_bytes())
    sources = "".join(
        f'\n[[sources]]\nname = "feed {n}"\nurl = "{b}/feed"\ninterval = "30m"\n' for n, b in enumerate(bases)
    )
    path = folder / "d24watch.toml"
    path.write_text(
        '[storage]\ndatabase = "state/d24watch.db"\n[fetch]\nallow_private_addresses = true\n'
        '[watch]\nwatchlist = "watchlist.toml"\n[log]\nlevel = "warning"\n' + sources
    )
    return path


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child-floor":
        child_floor(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "--child-naive":
        child_naive(sys.argv[2])
    else:
        main()
