"""Reading a news sitemap of N URLs (50,000 by default, the protocol's limit per file), side by side:

- d24watch's reader (`sitemaps.parse_sitemap`: lxml streamed, each element dropped once read, the
  newest `max_items_per_source` pages kept), plain and gzipped;
- the obvious way: the whole document parsed into a tree with lxml, every URL collected;
- `d24watch poll` of a sitemap source listing the N URLs, the newest 300 served as pages, then a
  second poll once nothing is new (the whole process tree measured).

Each parser runs in a child process, so its peak resident memory (ru_maxrss) is its own.

    python bench/bench_sitemap.py [--urls 50000]
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import article_page, write_config  # noqa: E402
from tests.helpers import d24_process  # noqa: E402
from tests.prose import prose  # noqa: E402
from tests.server import LocalServer  # noqa: E402


def sitemap(base: str, urls: int) -> bytes:
    now = datetime.now(UTC)
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">'
    ]
    for n in range(urls):
        when = (now - timedelta(minutes=n)).strftime("%Y-%m-%dT%H:%M:%SZ")
        lines.append(
            f"<url><loc>{base}/thoi-su/bai-viet-so-{n:06d}-ve-tin-tuc-trong-ngay.html</loc><news:news>"
            "<news:publication><news:name>Báo Thử</news:name><news:language>vi</news:language></news:publication>"
            f"<news:publication_date>{when}</news:publication_date><news:title>Bài viết số {n} về tin tức trong ngày"
            "</news:title></news:news></url>"
        )
    lines.append("</urlset>")
    return "".join(lines).encode()


def child(kind: str, path: str) -> None:
    body = Path(path).read_bytes()
    started = time.perf_counter()
    if kind == "tree":
        from lxml import etree

        root = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True))
        found = [el.text for el in root.iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc")]
        count = len(found)
    else:
        from d24watch.sitemaps import parse_sitemap

        count = len(parse_sitemap(body, "http://bench.example/sitemap.xml", None, 300, 100_000_000).entries)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "peak": peak, "count": count}))


def run_child(kind: str, path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(path)], capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout))


def baseline() -> int:
    """ru_maxrss of a child that only imports lxml and d24watch's reader."""
    code = "import resource, lxml.etree, d24watch.sitemaps; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    return int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout) * 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--urls", type=int, default=50_000)
    parser.add_argument("--child", nargs=2)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    mb = 1024 * 1024
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server = LocalServer().start()
        try:
            body = sitemap(server.base, args.urls)
            plain, packed = folder / "sitemap.xml", folder / "sitemap.xml.gz"
            plain.write_bytes(body)
            packed.write_bytes(gzip.compress(body))
            print(
                f"a news sitemap of {args.urls:,} URLs: {len(body) / mb:.1f} MB, {packed.stat().st_size / mb:.1f} MB gzipped"
            )
            print(f"a child that only imports lxml and the reader: {baseline() / mb:.0f} MB\n")
            print(f"{'reader':<46} {'seconds':>8} {'peak MB':>8} {'URLs kept':>10}")
            for label, kind, path in (
                ("d24watch parse_sitemap (streamed)", "d24watch", plain),
                ("d24watch parse_sitemap, gzipped file", "d24watch", packed),
                ("whole tree in memory (lxml.etree.fromstring)", "tree", plain),
            ):
                figures = run_child(kind, path)
                print(
                    f"{label:<46} {figures['seconds']:>8.2f} {figures['peak'] / mb:>8.0f} {int(figures['count']):>10,}"
                )

            server.serve("/sitemap.xml", body, "application/xml")
            for n in range(300):
                path = f"/thoi-su/bai-viet-so-{n:06d}-ve-tin-tuc-trong-ngay.html"
                server.serve(path, article_page(f"Bài viết số {n}", prose(n)[:3], lang="vi"))
            source = f'\n[[sources]]\nname = "Big sitemap"\nkind = "sitemap"\nurl = "{server.url("/sitemap.xml")}"\ninterval = "30m"\n'
            config = write_config(folder, source, fetch="max_bytes = 100_000_000")
            init, _ = d24_process(config, "init")
            assert init.code == 0, init.err
            print()
            for label in ("d24watch poll: first (300 pages fetched)", "d24watch poll: second (nothing new)"):
                started = time.perf_counter()
                result, peak = d24_process(config, "poll")
                assert result.code == 0, result.err
                summary = result.out.strip().splitlines()[0]
                print(f"{label:<46} {time.perf_counter() - started:>8.2f} {peak / mb:>8.0f}  {summary}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
