"""Fuzzing the pure stages with hypothesis: feed bytes, page bytes and watchlist terms. Whatever
comes in, the only exceptions are our own (ParseError for documents, ConfigError for watchlists).
`make test` runs a few hundred examples each; `make fuzz` runs 2,000 (D24WATCH_FUZZ_EXAMPLES)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from d24watch.aggregator import batch_answer, decode_id, interstitial_params
from d24watch.errors import ConfigError, ConfigErrors, ParseError
from d24watch.extract import extract_and_prepare
from d24watch.match import Matcher
from d24watch.parse import article_links, parse_feed
from d24watch.sitemaps import parse_sitemap, robots_sitemaps
from d24watch.telegram import parse_channel, post_entries
from d24watch.watchlist import load_watchlist

EXAMPLES = int(os.environ.get("D24WATCH_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)

FEED_PARTS = [
    b'<?xml version="1.0" encoding="utf-8"?>',
    b'<?xml version="1.0" encoding="windows-1258"?>',
    b'<rss version="2.0">',
    b"<channel>",
    b"</channel>",
    b"</rss>",
    b"<item>",
    b"</item>",
    b"<title>",
    b"</title>",
    b"<link>",
    b"</link>",
    b'<guid isPermaLink="false">',
    b"</guid>",
    b"<description>",
    b"</description>",
    b"<![CDATA[",
    b"]]>",
    b'<feed xmlns="http://www.w3.org/2005/Atom">',
    b"</feed>",
    b"<entry>",
    b"</entry>",
    b'<link href="',
    b'"/>',
    b"<pubDate>Mon, 06 May 2024 08:00:00 +0700</pubDate>",
    b"<updated>2024-13-45T99:99:99Z</updated>",
    b"&amp;",
    b"&lt;script&gt;",
    b"&#x1F600;",
    b"&#0;",
    b"&bogus;",
    b'<!DOCTYPE rss [<!ENTITY a "b">]>',
    b"http://example.org/a?b=1&c=2",
    b"//example.org/x",
    b"/relative",
    b"javascript:alert(1)",
    "Nguyễn Văn Bình Chỉ thị 24-CT/TW".encode(),
    "Đặng Đình Bách".encode("utf-16"),
    b"\xff\xfe\x00",
    b"\x00",
    b'{"version": "https://jsonfeed.org/version/1.1", "items": [',
    b'{"id": 1, "url": 5}',
    b"]}",
]
PAGE_PARTS = [
    b"<!doctype html>",
    b'<html lang="vi">',
    b"<head>",
    b'<meta charset="utf-8">',
    b'<meta charset="x-unknown">',
    b'<meta http-equiv="Content-Type" content="text/html; charset=windows-1258">',
    b"<title>",
    b"</title>",
    b'<link rel="canonical" href="',
    b'">',
    b"</head>",
    b"<body>",
    b"<article>",
    b"</article>",
    b"<p>",
    b"</p>",
    b'<a href="/2024/05/06/some-long-article-slug-here">',
    b'<a href="http://[::1]/x">',
    b"</a>",
    b"<script>alert(1)</script>",
    b"<style>p{}</style>",
    b"<nav>Home</nav>",
    b"<table><tr><td>",
    b"</td></tr></table>",
    b'<meta property="article:published_time" content="not a date">',
    b"<!--",
    b"-->",
    b"<![CDATA[",
    "Cơ quan An ninh điều tra đã khởi tố Nguyễn Văn Bình. ".encode() * 5,
    b"\xc3\x28",
    b"\x00",
    b"</body></html>",
]


def documents(parts: list[bytes]) -> st.SearchStrategy[bytes]:
    """Random bytes, or shuffled pieces of the real thing with noise in between."""
    pieces = st.lists(
        st.one_of(st.sampled_from(parts), st.binary(max_size=40), st.text(max_size=60).map(str.encode)), max_size=60
    )
    return st.one_of(st.binary(max_size=2000), pieces.map(b"".join))


FIELD = st.one_of(
    st.text(max_size=80), st.sampled_from(["http://example.org/a", "/rel", "//h.example/p", "", "Chỉ thị 24"])
)


@st.composite
def structured_feeds(draw: st.DrawFn) -> bytes:
    """Well-formed RSS or Atom whose fields hold anything (escaped), so that entries come out."""
    items = draw(st.lists(st.tuples(FIELD, FIELD, FIELD, FIELD), max_size=8))
    atom = draw(st.booleans())
    if atom:
        body = "".join(
            f"<entry><title>{escape(t)}</title><link href={quoteattr(link)}/><id>{escape(guid)}</id>"
            f"<summary>{escape(text)}</summary></entry>"
            for t, link, guid, text in items
        )
        return f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">{body}</feed>'.encode()
    body = "".join(
        f"<item><title>{escape(t)}</title><link>{escape(link)}</link><guid>{escape(guid)}</guid>"
        f"<description>{escape(text)}</description></item>"
        for t, link, guid, text in items
    )
    return f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>{body}</channel></rss>'.encode()


@FUZZ
@given(
    st.one_of(documents(FEED_PARTS), structured_feeds()),
    st.sampled_from(["application/rss+xml", "text/html", "application/json", ""]),
)
def test_any_feed_bytes_parse_or_raise_parse_error(body: bytes, content_type: str) -> None:
    try:
        feed = parse_feed(body, "http://example.org/feed", content_type)
    except ParseError:
        event("feed refused")
        return
    event("feed parsed with entries" if feed.entries else "feed parsed, no entries")
    for entry in feed.entries:
        assert entry.link is None or entry.link.startswith(("http://", "https://"))
        assert isinstance(entry.title, str)


@FUZZ
@given(documents(PAGE_PARTS), st.sampled_from([None, "utf-8", "windows-1258", "x-bogus"]))
def test_any_page_bytes_extract_or_raise_parse_error(body: bytes, charset: str | None) -> None:
    try:
        prepared = extract_and_prepare(body, charset)
    except ParseError:
        prepared = None
    if prepared is not None:
        assert isinstance(prepared.article.text, str)
    try:
        links = article_links(body, "http://example.org/news/")
    except ParseError:
        return
    assert all(url.startswith(("http://", "https://")) for url, _ in links)


TERM = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)


@FUZZ
@given(st.lists(TERM, min_size=0, max_size=4), st.lists(TERM, max_size=2), st.text(max_size=600))
def test_any_watchlist_terms_load_or_raise_config_error_and_match_any_text(
    terms: list[str], context: list[str], text: str
) -> None:
    def toml_list(values: list[str]) -> str:
        return "[" + ", ".join(json.dumps(v, ensure_ascii=False) for v in values) + "]"  # JSON strings are TOML strings

    source = (
        '[[entity]]\nid = "fuzzed"\nlabel = "Fuzzed"\nkind = "person"\n'
        f"terms = {toml_list(terms)}\ncontext = {toml_list(context)}\n"
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "watchlist.toml"
        path.write_text(source, "utf-8", errors="surrogatepass")
        try:
            watchlist = load_watchlist(path)
        except (ConfigError, ConfigErrors):
            event("watchlist refused")
            return
    event("watchlist loaded")
    for match in Matcher(watchlist).match(text[:40], text):
        for hit in match.hits:
            source_text = text[:40] if hit.field == "title" else text
            assert 0 <= hit.start < hit.end <= len(source_text)
            assert source_text[hit.start : hit.end] == hit.text


SITEMAP_PARTS = [
    b'<?xml version="1.0" encoding="UTF-8"?>',
    b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">',
    b"</urlset>",
    b'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">',
    b"</sitemapindex>",
    b"<url>",
    b"</url>",
    b"<sitemap>",
    b"</sitemap>",
    b"<loc>",
    b"</loc>",
    b"<lastmod>2024-12-02T08:00:00+07:00</lastmod>",
    b"<lastmod>not a date</lastmod>",
    b"<news:news><news:publication><news:language>vi</news:language></news:publication>",
    b"<news:publication_date>2024-12-02</news:publication_date>",
    b"<news:title>",
    b"</news:title>",
    b"</news:news>",
    b"http://example.org/a-long-article-slug-here",
    b"javascript:alert(1)",
    b"/relative",
    b'<!DOCTYPE urlset [<!ENTITY a "b">]>',
    b"&amp;",
    b"&bogus;",
    b"\x1f\x8b\x08\x00",
    "Nguyễn Văn Bình".encode(),
    b"\x00",
]
CHANNEL_PARTS = [
    b"<!DOCTYPE html><html><body>",
    b'<div class="tgme_channel_info_header_title">',
    b"</div>",
    b'<div class="tgme_widget_message js-widget_message" data-post="chan/',
    b"12",
    b"99999999999999",
    b'">',
    b'<div class="tgme_widget_message_text">',
    b'<a href="https://outlet.example/x">',
    b'<a href="javascript:alert(1)">',
    b"</a>",
    b"<br/>",
    b"<script>alert(1)</script>",
    b'<a class="tgme_widget_message_date" href="https://t.me/chan/12"><time datetime="2024-12-02T01:00:00+00:00">',
    b'<time datetime="yesterday">',
    b"</time></a>",
    "Đặng Đình Bách".encode(),
    b"\xff\xfe",
    b"</body></html>",
]


@FUZZ
@given(documents(SITEMAP_PARTS))
def test_any_sitemap_bytes_parse_or_raise_parse_error(body: bytes) -> None:
    try:
        sitemap = parse_sitemap(body, "http://example.org/sitemap.xml", None, 50, 100_000)
    except ParseError:
        event("sitemap refused")
        return
    event(f"sitemap parsed: {sitemap.kind}")
    assert len(sitemap.entries) <= 50
    for entry in sitemap.entries:
        assert entry.link is not None and entry.link.startswith(("http://", "https://"))
    for child in sitemap.children:
        assert child.url.startswith(("http://", "https://"))
    assert all(link.startswith(("http://", "https://")) for link in robots_sitemaps(body, "http://example.org/"))


@FUZZ
@given(documents(CHANNEL_PARTS))
def test_any_channel_page_bytes_parse_or_raise_parse_error(body: bytes) -> None:
    try:
        page = parse_channel(body, "https://t.me/s/chan")
    except ParseError:
        event("channel page refused")
        return
    event("channel page with posts" if page.posts else "channel page, no posts")
    for entry in post_entries(page, after=None, follow_links=True, language=None):
        assert entry.link is not None and entry.link.startswith(("http://", "https://"))
        assert "<script" not in entry.summary


@FUZZ
@given(st.one_of(st.binary(max_size=400), st.text(max_size=200).map(str.encode)), st.text(max_size=120))
def test_any_aggregator_answer_or_id_gives_a_url_or_none(body: bytes, identifier: str) -> None:
    for found in (batch_answer(body), decode_id(identifier)):
        assert found is None or found.startswith(("http://", "https://"))
    params = interstitial_params(body, identifier)
    assert params is None or params.timestamp.isdigit()
