"""The fault matrix: one misbehaving source per row, polled twice beside a healthy one through the
real command line. Every row must leave the cycle running (exit 0, the healthy source stored), record
what happened to the bad source as its row says, and store nothing twice."""

from __future__ import annotations

import gzip
import hashlib
import socket
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import article_page, feed_source, rss, write_config
from tests.helpers import d24
from tests.prose import prose
from tests.receiver import free_port
from tests.server import LocalServer, Served, gzip_bomb, raw, redirect, stall

BINH = "Police in Hanoi arrested Nguyễn Văn Bình, director of legal affairs at MOLISA, under Article 337."


def _reset(h: BaseHTTPRequestHandler) -> None:
    """Read the request, then drop the connection with a TCP reset and no answer."""
    h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    h.connection.close()
    h.close_connection = True


def _garbage(h: BaseHTTPRequestHandler) -> None:
    h.wfile.write(b"\x00\x01 this is not HTTP at all \xff\xfe\r\n\r\n")
    h.close_connection = True


def _streamed(megabytes: int) -> Callable[[BaseHTTPRequestHandler], None]:
    """A body with no Content-Length that goes on for `megabytes`, ended by closing."""

    def handler(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/rss+xml")
        h.send_header("Connection", "close")
        h.end_headers()
        chunk = b"<item><title>x</title></item>" * 4096
        try:
            for _ in range(megabytes * 1024 * 1024 // len(chunk)):
                h.wfile.write(chunk)
        except OSError:
            pass
        h.close_connection = True

    return handler


def _chain(server: LocalServer, hops: int, end: str) -> str:
    for n in range(hops):
        server.routes[f"/hop{n}"] = redirect(server.url(f"/hop{n + 1}") if n + 1 < hops else end)
    return server.url("/hop0")


@dataclass
class Row:
    name: str
    setup: Callable[[LocalServer], str]  # serves the bad source, returns its [[sources]] text
    error: str | None  # the recorded error must contain this; None: the source must succeed
    stored: int | None = 0  # articles from the bad source after two polls (None: not checked)
    max_bytes: int = 2_000_000
    check: Callable[[sqlite3.Connection, LocalServer], None] | None = None


def _feed(
    server: LocalServer, path: str, body: bytes | str, content_type: str = "application/rss+xml", **kw: Any
) -> str:
    server.routes[path] = Served(body.encode() if isinstance(body, str) else body, content_type, **kw)
    return feed_source("Bad", server.url(path))


def _bad(server: LocalServer, path: str, handler: Callable[[BaseHTTPRequestHandler], None], kind: str = "feed") -> str:
    server.routes[path] = handler
    return feed_source("Bad", server.url(path), kind)


def _articles(server: LocalServer, prefix: str, count: int) -> list[dict[str, str]]:
    items = []
    for n in range(count):
        path = f"/{prefix}{n}"
        seed = int(hashlib.sha256(path.encode()).hexdigest()[:8], 16)
        server.serve(path, article_page(f"{prefix} story {n}", prose(seed)))
        items.append({"title": f"{prefix} story {n}", "link": server.url(path), "guid": path})
    return items


def _many_items(server: LocalServer) -> str:
    body = rss(
        [{"title": f"Item {n}", "guid": f"g{n}", "description": f"Short item number {n}."} for n in range(50_000)]
    )
    return _feed(server, "/many", body)


def _duplicate_guids(server: LocalServer) -> str:
    items = _articles(server, "dup", 3)
    for item in items:
        item["guid"] = "the-same-guid"
    return _feed(server, "/dups", rss(items))


def _no_links(server: LocalServer) -> str:
    items = [
        {"title": "Only a title and text", "description": " ".join(prose(77)[:2])},
        {"title": "Another without a link", "guid": "no-link-2", "description": " ".join(prose(78)[:2])},
    ]
    return _feed(server, "/nolinks", rss(items))


def _relative_links(server: LocalServer) -> str:
    server.serve("/rel/one", article_page("Relative link", prose(501)))
    server.serve("/proto/two", article_page("Protocol-relative link", prose(502)))
    items = [
        {"title": "Relative link", "link": "/rel/one"},
        {"title": "Protocol-relative link", "link": f"//127.0.0.1:{server.port}/proto/two"},
    ]
    return _feed(server, "/relative", rss(items))


def _relative_stored(db: sqlite3.Connection, server: LocalServer) -> None:
    urls = {r[0] for r in db.execute("SELECT url FROM articles WHERE source = 'Bad'")}
    assert urls == {server.url("/rel/one"), server.url("/proto/two")}


def _wrong_charset(server: LocalServer) -> str:
    page = article_page("Tin tức", prose(601)).replace("Tin tức", "Tin t\u1ee9c")
    server.routes["/cp"] = Served(page.encode("cp1258", "replace"), "text/html; charset=utf-8")
    return _feed(server, "/wrongcharset", rss([{"title": "Tin tuc", "link": server.url("/cp")}]))


def _missing_charset(server: LocalServer) -> str:
    page = article_page("Bắt giữ", [*prose(602)[:2], BINH, *prose(602)[2:]]).replace('<meta charset="utf-8">', "")
    server.routes["/nocharset"] = Served(page.encode("utf-8"), "text/html")
    feed = rss([{"title": "Bắt giữ", "link": server.url("/nocharset")}]).replace(' encoding="utf-8"', "")
    return _feed(server, "/missingcharset", feed.encode("utf-8"), "application/xml")


def _binh_matched(db: sqlite3.Connection, server: LocalServer) -> None:
    text = db.execute("SELECT text FROM articles WHERE source = 'Bad'").fetchone()[0]
    assert "Nguyễn Văn Bình" in text
    matched = db.execute(
        "SELECT e.entity_id FROM article_entities e JOIN articles a ON a.id = e.article_id WHERE a.source = 'Bad'"
    ).fetchall()
    assert matched == [("nguyen-van-binh",)]


def _feed_as_page(server: LocalServer) -> str:
    items = _articles(server, "fap", 2)
    server.routes["/feed-as-page"] = Served(rss(items).encode(), "application/rss+xml")
    return feed_source("Bad", server.url("/feed-as-page"), "page")


def _retry_after_honoured(db: sqlite3.Connection, server: LocalServer) -> None:
    next_at = db.execute("SELECT next_check_at FROM sources WHERE name = 'Bad'").fetchone()[0]
    assert datetime.fromisoformat(next_at.replace("Z", "+00:00")) > datetime.now(UTC) + timedelta(hours=1.9)


def _xxe_not_read(db: sqlite3.Connection, server: LocalServer) -> None:
    assert (
        db.execute("SELECT count(*) FROM articles WHERE text LIKE '%root:%' OR title LIKE '%root:%'").fetchone()[0] == 0
    )


XXE = (
    b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b'<rss version="2.0"><channel><item><title>&x;</title><description>&x;</description>'
    b"<link>http://a.example/1</link></item></channel></rss>"
)
LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(b'<!ENTITY lol%d "%s">' % (n, (b"&lol%d;" % (n - 1) if n > 1 else b"&lol;") * 10) for n in range(1, 10))
    + b']><rss version="2.0"><channel><item><title>&lol9;</title></item></channel></rss>'
)
TRUNCATED = rss(
    [
        {"title": f"T{n}", "guid": f"urn:t{n}", "description": f"Text of item {n}: " + " ".join(prose(900 + n)[:1])}
        for n in range(5)
    ]
)[:-200]


def _complete_items_kept(db: sqlite3.Connection, server: LocalServer) -> None:
    titles = [r[0] for r in db.execute("SELECT title FROM articles WHERE source = 'Bad' ORDER BY id")]
    assert titles[:4] == ["T0", "T1", "T2", "T3"]


ROWS = [
    Row("HTTP 404", lambda s: _feed(s, "/404", b"gone", status=404), "HTTP 404"),
    Row("HTTP 500", lambda s: _feed(s, "/500", b"oops", status=500), "HTTP 500"),
    Row(
        "HTTP 429 with Retry-After",
        lambda s: _feed(s, "/429", b"slow down", status=429, headers={"Retry-After": "7200"}),
        "HTTP 429",
        check=_retry_after_honoured,
    ),
    Row(
        "connection refused", lambda s: feed_source("Bad", f"http://127.0.0.1:{free_port()}/feed"), "connection failed"
    ),
    Row("connection reset", lambda s: _bad(s, "/reset", _reset), "fetch: "),
    Row("not HTTP at all", lambda s: _bad(s, "/garbage", _garbage), "fetch: "),
    Row("stalls mid-body", lambda s: _bad(s, "/stall", stall(30)), "timed out"),
    Row(
        "declared body over the cap",
        lambda s: _bad(
            s, "/big", raw(200, b"<rss>", {"Content-Type": "application/rss+xml", "Content-Length": "50000000"})
        ),
        "over the 2,000,000-byte cap",
    ),
    Row("streamed body over the cap", lambda s: _bad(s, "/stream", _streamed(8)), "over the 2,000,000-byte cap"),
    Row("gzip bomb", lambda s: _bad(s, "/bomb", gzip_bomb(100)), "over the 2,000,000-byte cap"),
    Row("XML entity expansion", lambda s: _feed(s, "/laughs", LAUGHS), "never expanded"),
    Row("external entity (XXE)", lambda s: _feed(s, "/xxe", XXE), "never expanded", check=_xxe_not_read),
    Row(
        "malformed XML",
        lambda s: _feed(s, "/malformed", b"<rss><channel><item><title>x</titl></item></rss>"),
        "parse: ",
    ),
    Row("truncated XML", lambda s: _feed(s, "/truncated", TRUNCATED), None, stored=None, check=_complete_items_kept),
    Row("empty body", lambda s: _feed(s, "/empty", b""), "empty body"),
    Row(
        "HTML served as a feed",
        lambda s: _feed(s, "/html", article_page("Home", prose(5)), "text/html"),
        "an HTML page",
    ),
    Row("feed served as a page", _feed_as_page, None, stored=2),
    Row("wrong charset declared", _wrong_charset, None, stored=1),
    Row("no charset declared", _missing_charset, None, stored=1, check=_binh_matched),
    Row("redirect loop", lambda s: _bad(s, "/loop", redirect(s.url("/loop"))), "redirect loop"),
    Row("long redirect chain", lambda s: feed_source("Bad", _chain(s, 8, s.url("/nowhere"))), "more than 5 redirects"),
    Row("relative and protocol-relative links", _relative_links, None, stored=2, check=_relative_stored),
    Row("50,000 items", _many_items, None, stored=300, max_bytes=20_000_000),
    Row("duplicate GUIDs within a feed", _duplicate_guids, None, stored=1),
    Row("items without links", _no_links, None, stored=2),
    Row(
        "gzip that is not gzip",
        lambda s: _bad(
            s,
            "/badgzip",
            raw(200, b"not gzip at all", {"Content-Type": "application/rss+xml", "Content-Encoding": "gzip"}),
        ),
        "could not be decompressed",
    ),
    Row(
        "gzip feed (fine)",
        lambda s: _bad(
            s,
            "/gz",
            raw(
                200,
                gzip.compress(rss(_articles(s, "gz", 1)).encode()),
                {"Content-Type": "application/rss+xml", "Content-Encoding": "gzip"},
            ),
        ),
        None,
        stored=1,
    ),
]


# -- the rows that apply to sitemaps and Telegram channels -------------------------------------------

SITEMAP_LAUGHS = LAUGHS.replace(b"<rss", b"<urlset").replace(b"rss>", b"urlset>")


def _kind(server: LocalServer, kind: str, path: str, body: bytes | str, content_type: str, **kw: Any) -> str:
    server.routes[path] = Served(body.encode() if isinstance(body, str) else body, content_type, **kw)
    return feed_source("Bad", server.url(path), kind)


def _sitemap_urls(server: LocalServer, count: int) -> str:
    """A news sitemap of `count` pages, dated newest first, the first few served as articles."""
    now = datetime.now(UTC)
    lines = []
    for n in range(count):
        path = f"/sm/story-number-{n:05d}-about-the-news"
        if n < 400:
            server.serve(path, article_page(f"Story {n}", [f"Story {n}: " + " ".join(prose(n)[:2])]))
        when = (now - timedelta(minutes=n)).strftime("%Y-%m-%dT%H:%M:%SZ")
        lines.append(f"<url><loc>{server.url(path)}</loc><lastmod>{when}</lastmod></url>")
    body = '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">' + "".join(lines)
    return _kind(server, "sitemap", "/big-sitemap.xml", body + "</urlset>", "application/xml")


def _channel_posts(server: LocalServer) -> str:
    hostile = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    posts = "".join(
        f'<div class="tgme_widget_message js-widget_message" data-post="chan/{n}">'
        f'<div class="tgme_widget_message_text">Post {n} {hostile}<iframe src="javascript:alert(3)"></iframe></div>'
        f'<a class="tgme_widget_message_date" href="https://t.me/chan/{n}"><time datetime="2024-12-0{n}T00:00:00+00:00">'
        "</time></a></div>"
        for n in (1, 2)
    )
    page = f'<html><body><div class="tgme_channel_info_header_title">Chan</div>{posts}</body></html>'
    return _kind(server, "telegram", "/s/chan", page, "text/html")


def _posts_inert(db: sqlite3.Connection, server: LocalServer) -> None:
    texts = [r[0] for r in db.execute("SELECT text FROM articles WHERE source = 'Bad'")]
    assert texts and all("alert" not in t and "<" not in t for t in texts), texts


for kind in ("sitemap", "telegram"):
    ROWS += [
        Row(f"{kind}: HTTP 500", lambda s, k=kind: _kind(s, k, "/k500", b"oops", "text/html", status=500), "HTTP 500"),
        Row(f"{kind}: stalls mid-body", lambda s, k=kind: _bad(s, "/kstall", stall(30), k), "timed out"),
        Row(
            f"{kind}: streamed body over the cap",
            lambda s, k=kind: _bad(s, "/kstream", _streamed(8), k),
            "over the 2,000,000-byte cap",
        ),
        Row(
            f"{kind}: redirect loop", lambda s, k=kind: _bad(s, "/kloop", redirect(s.url("/kloop")), k), "redirect loop"
        ),
    ]
ROWS += [
    Row(
        "sitemap: malformed XML",
        lambda s: _kind(s, "sitemap", "/sm-bad", b"<urlset><url><loc>x</lo></urlset", "application/xml"),
        "parse: ",
    ),
    Row(
        "sitemap: not a sitemap",
        lambda s: _kind(s, "sitemap", "/sm-html", article_page("Home", prose(5)), "text/html"),
        "not a sitemap",
    ),
    Row(
        "sitemap: XML entity expansion",
        lambda s: _kind(s, "sitemap", "/sm-laughs", SITEMAP_LAUGHS, "application/xml"),
        "never expanded",
    ),
    Row(
        "sitemap: gzip file over the cap once decompressed",
        lambda s: _kind(s, "sitemap", "/sm.xml.gz", gzip.compress(b"<urlset>" + b" " * 5_000_000), "application/gzip"),
        "over the 2,000,000-byte cap once decompressed",
    ),
    Row("sitemap: 50,000 URLs", lambda s: _sitemap_urls(s, 50_000), None, stored=300, max_bytes=20_000_000),
    Row(
        "telegram: not a channel page",
        lambda s: _kind(s, "telegram", "/s/nothing", article_page("Home", prose(5)), "text/html"),
        "not a Telegram channel page",
    ),
    Row("telegram: hostile post HTML", _channel_posts, None, stored=2, check=_posts_inert),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_fault_matrix(row: Row, tmp_path: Path, server: LocalServer, capsys: Any) -> None:
    """Each misbehaviour is confined to its source; the cycle goes on and nothing is stored twice."""
    healthy = _articles(server, "ok", 1)
    server.serve("/healthy", rss(healthy), "application/rss+xml", etag='"h1"')
    sources = feed_source("Healthy", server.url("/healthy")) + row.setup(server)
    config = write_config(tmp_path, sources, fetch=f"max_bytes = {row.max_bytes}")
    config.write_text(config.read_text("utf-8").replace("timeout = 5", "timeout = 2"), "utf-8")
    assert d24(capsys, config, "init").code == 0

    first = d24(capsys, config, "poll")
    assert first.code == 0, first.err
    assert "Healthy: 1 new" in first.out
    assert "Traceback" not in first.err
    db = sqlite3.connect(tmp_path / "state" / "d24watch.db")
    last_error, errors = db.execute("SELECT last_error, consecutive_errors FROM sources WHERE name = 'Bad'").fetchone()
    if row.error is None:
        assert errors == 0, last_error
        assert "Bad: failed" not in first.out
    else:
        assert errors == 1 and row.error in last_error, last_error
        assert f"Bad: failed: {last_error}" in first.out

    db.execute("UPDATE sources SET next_check_at = NULL")  # poll everything again at once
    db.commit()
    second = d24(capsys, config, "poll")
    assert second.code == 0
    assert "Healthy: unchanged (304)" in second.out
    stored = db.execute("SELECT count(*) FROM articles WHERE source = 'Bad' AND duplicate_of IS NULL").fetchone()[0]
    if row.stored is not None:
        assert stored == row.stored
    urls = [
        r[0] for r in db.execute("SELECT canonical_url FROM articles WHERE duplicate_of IS NULL AND source != 'seed'")
    ]
    assert len(urls) == len(set(urls)), "an article was stored twice"
    if row.check is not None:
        row.check(db, server)
    db.close()
