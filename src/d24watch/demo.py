"""`d24watch demo`: the bundled sample outlets served on 127.0.0.1, then init, poll and digest in a
temporary state folder, printing what each step did and the digest. No network, no set-up."""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any, TextIO
from xml.sax.saxutils import escape as xml_escape

from d24watch import commands
from d24watch.app import App
from d24watch.cli import summary_line
from d24watch.deliver.render.email import render_text
from d24watch.models import SourceReport


def sample_news() -> dict[str, Any]:
    text = (resources.files("d24watch") / "demo_data" / "articles.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def _paragraphs(article: dict[str, Any], by_slug: dict[str, dict[str, Any]]) -> list[str]:
    if "copy_of" in article:
        return list(by_slug[article["copy_of"]]["paragraphs"])
    return list(article["paragraphs"])


def render_page(outlet: dict[str, Any], article: dict[str, Any], paragraphs: list[str]) -> str:
    body = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    return (
        f'<!doctype html><html lang="{outlet["language"]}"><head><meta charset="utf-8">'
        f"<title>{escape(article['title'])} | {escape(outlet['name'])}</title></head><body>"
        f'<header><a href="/">{escape(outlet["name"])}</a> <nav><a href="/politics">Politics</a> '
        f'<a href="/business">Business</a> <a href="/sport">Sport</a></nav></header>'
        f"<main><article><h1>{escape(article['title'])}</h1>"
        f'<p class="byline">{escape(outlet["name"])} · {article["published"][:10]}</p>{body}</article></main>'
        f"<footer>© {escape(outlet['name'])}. Sample text written for the d24watch demo.</footer></body></html>"
    )


def render_feed(base: str, outlet: dict[str, Any], articles: list[dict[str, Any]]) -> str:
    name = xml_escape(outlet["name"])
    if outlet["format"] == "atom":
        entries = "".join(
            f"<entry><title>{xml_escape(a['title'])}</title>"
            f'<link href="{base}/{outlet["id"]}/{a["slug"]}"/><id>urn:demo:{outlet["id"]}:{a["slug"]}</id>'
            f"<updated>{a['published']}</updated></entry>"
            for a in articles
        )
        return (
            '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
            f"<title>{name}</title><id>urn:demo:{outlet['id']}</id><updated>2024-05-11T00:00:00Z</updated>"
            f"{entries}</feed>"
        )
    items = "".join(
        f"<item><title>{xml_escape(a['title'])}</title><link>{base}/{outlet['id']}/{a['slug']}</link>"
        f"<guid>{base}/{outlet['id']}/{a['slug']}</guid><pubDate>{a['published']}</pubDate></item>"
        for a in articles
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{name}</title>'
        f"<link>{base}/{outlet['id']}/</link>{items}</channel></rss>"
    )


@contextmanager
def serve_sample(news: dict[str, Any]) -> Iterator[str]:
    """Serve each outlet's feed at /OUTLET/feed and its articles at /OUTLET/SLUG; yields the base URL."""
    outlets = {o["id"]: o for o in news["outlet"]}
    by_slug = {a["slug"]: a for a in news["article"]}
    routes: dict[str, tuple[str, bytes]] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            content_type, body = routes.get(self.path, ("text/plain; charset=utf-8", b"not found"))
            self.send_response(200 if self.path in routes else 404)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    for outlet_id, outlet in outlets.items():
        mine = [a for a in news["article"] if a["outlet"] == outlet_id]
        kind = "application/atom+xml" if outlet["format"] == "atom" else "application/rss+xml"
        routes[f"/{outlet_id}/feed"] = (kind, render_feed(base, outlet, mine).encode())
        for article in mine:
            page = render_page(outlet, article, _paragraphs(article, by_slug))
            routes[f"/{outlet_id}/{article['slug']}"] = ("text/html; charset=utf-8", page.encode())
    thread = threading.Thread(target=httpd.serve_forever, name="demo-http", daemon=True)
    thread.start()
    try:
        yield base
    finally:
        httpd.shutdown()
        httpd.server_close()


def write_demo_config(folder: Path, base: str, news: dict[str, Any]) -> Path:
    shutil.copyfile(str(resources.files("d24watch") / "demo_data" / "watchlist.toml"), folder / "watchlist.toml")
    sources = "".join(
        f'\n[[sources]]\nname = "{o["name"]}"\nkind = "feed"\nurl = "{base}/{o["id"]}/feed"\n'
        f'interval = "30m"\nlanguage = "{o["language"]}"\n'
        for o in news["outlet"]
    )
    config = folder / "d24watch.toml"
    config.write_text(
        '[storage]\ndatabase = "state/d24watch.db"\n'
        "[fetch]\ntimeout = 10\nextract_workers = 1\n"
        "# Every sample page is on 127.0.0.1, which d24watch refuses for links found in feeds unless told.\n"
        "allow_private_addresses = true\n"
        '[watch]\nwatchlist = "watchlist.toml"\n'
        '[notify.file]\nmode = "digest"\ndirectory = "state/outbox"\n'
        '[log]\nlevel = "error"\n' + sources,
        encoding="utf-8",
    )
    return config


def run_demo(out: TextIO, keep: Path | None = None) -> int:
    news = sample_news()
    folder = Path(tempfile.mkdtemp(prefix="d24watch-demo-")) if keep is None else keep
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with serve_sample(news) as base:
            config = write_demo_config(folder, base, news)
            app = App.load(config)
            out.write(
                f"d24watch demo: {len(news['article'])} sample articles from {len(news['outlet'])} outlets on {base}\n"
            )
            _, seeds = commands.init(app)
            out.write(f"\n$ d24watch init\ndatabase created; {seeds} seed documents imported as already seen\n")
            out.write("\n$ d24watch poll\n")

            def progress(report: SourceReport) -> None:
                out.write(summary_line(report) + "\n")

            for outlet in news["outlet"]:  # one after the other, so the original is always stored first
                commands.poll(app, outlet["name"], progress=progress)
            out.write(
                "(left out on purpose: a syndicated copy, a footballer who shares a detainee's name, "
                "and a Prime Minister's directive also numbered 24)\n"
            )
            out.write("\n$ d24watch digest\n")
            report = commands.digest(app)
            sent = sorted((folder / "state" / "outbox").glob("*-digest-*.json"))
            if report.failed or not sent:
                out.write("the digest could not be written: " + "; ".join(report.errors) + "\n")
                return 1
            payload = json.loads(sent[-1].read_text(encoding="utf-8"))
            out.write(f"written to {sent[-1].parent} as .eml and .json:\n\n")
            out.write(render_text(payload))
            if keep is not None:
                out.write(f"\nThe demo's state is kept in {folder}.\n")
            return 0
    finally:
        if keep is None:
            shutil.rmtree(folder, ignore_errors=True)
