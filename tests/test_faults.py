"""Broken, slow, huge and hostile sources: each is recorded as that source's error, the healthy
source is processed fully, and memory stays bounded."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from d24watch.errors import FetchError, ParseError
from d24watch.fetch import is_public_address
from d24watch.parse import parse_feed
from tests.conftest import article_page, feed_source, rss, write_config
from tests.helpers import d24, d24_process
from tests.prose import prose
from tests.server import LocalServer, gzip_bomb, raw, redirect, stall

ENTITY_BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "'
    + b"x" * 8000
    + b'">]><rss version="2.0"><channel>'
    + b"<item><title>&a;&a;&a;&a;&a;&a;&a;&a;</title></item>" * 2000
    + b"</channel></rss>"
)
XXE = (
    b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b'<rss version="2.0"><channel><item><title>&x;</title><link>http://a.example/1</link></item></channel></rss>'
)


def test_a_poll_with_every_kind_of_broken_source_exits_0_and_stays_small(tmp_path: Path, server: LocalServer) -> None:
    """500, a stalled body, malformed XML, an entity bomb, a 300 MB gzip bomb, a 20 MB body and a
    redirect loop each become that source's error; the healthy feed is stored; peak memory of the
    whole process tree stays under 400 MB."""
    server.serve("/e500", b"boom", status=500)
    server.routes["/stall"] = stall(30)
    server.serve("/malformed", b"<rss><channel><item><title>unclosed", "application/rss+xml")
    server.serve("/bomb", ENTITY_BOMB, "application/rss+xml")
    server.routes["/gzip"] = gzip_bomb(300)
    server.routes["/huge"] = raw(200, b"<rss>" + b" " * (20 * 1024 * 1024), {"Content-Type": "application/rss+xml"})
    server.routes["/loop1"] = redirect(server.url("/loop2"))
    server.routes["/loop2"] = redirect(server.url("/loop1"))
    items = [{"title": f"Story {i}", "link": server.url(f"/ok/{i}"), "guid": str(i)} for i in range(5)]
    server.serve("/healthy", rss(items), "application/rss+xml")
    for i in range(5):
        server.serve(f"/ok/{i}", article_page(f"Story {i}", prose(100 + i)))
    names = ["e500", "stall", "malformed", "bomb", "gzip", "huge", "loop1", "healthy"]
    sources = "".join(feed_source(n, server.url("/" + n)) for n in names)
    config = write_config(tmp_path, sources, fetch="max_bytes = 10_000_000")
    config.write_text(config.read_text().replace("timeout = 5", "timeout = 1"))
    assert d24_process(config, "init")[0].code == 0
    result, peak = d24_process(config, "poll")
    assert result.code == 0, result.err
    assert "healthy: 5 new" in result.out
    errors = dict(sqlite3.connect(tmp_path / "state/d24watch.db").execute("SELECT name, last_error FROM sources"))
    assert errors["e500"] == "fetch: HTTP 500"
    assert "timed out" in errors["stall"]
    assert errors["malformed"].startswith("parse: not a feed")
    assert errors["bomb"] == "parse: the document declares XML entities, which are never expanded"
    assert "cap (after decompression)" in errors["gzip"]
    assert "cap" in errors["huge"]
    assert "redirect loop" in errors["loop1"]
    assert errors["healthy"] is None
    print(f"peak memory of the poll process tree: {peak / 1e6:.0f} MB")
    assert peak < 400 * 1024 * 1024, f"peak memory {peak / 1e6:.0f} MB"


def test_external_entities_are_never_resolved() -> None:
    """A feed declaring a SYSTEM entity (XXE) is refused before any parser sees it."""
    with pytest.raises(ParseError, match="declares XML entities"):
        parse_feed(XXE, "http://feed.example/")


def test_html_served_as_a_feed_is_an_error() -> None:
    with pytest.raises(ParseError, match="HTML page"):
        parse_feed(b"<!doctype html><html><body><p>503 Service Unavailable</p></body></html>", "http://f.example/")


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("2002:7f00:1::", False),
        ("93.184.216.34", True),
        ("2606:4700::1111", True),
    ],
)
def test_address_guard_classifies_addresses(address: str, public: bool) -> None:
    assert is_public_address(address) is public


@pytest.mark.parametrize(
    "link",
    [
        "http://localhost:{port}/x",
        "http://2130706433:{port}/x",
        "http://0x7f000001:{port}/x",
        "http://0177.0.0.1:{port}/x",
        "http://127.1:{port}/x",
        "http://[::1]:{port}/x",
        "http://[::ffff:127.0.0.1]:{port}/x",
    ],
)
def test_guard_refuses_loopback_however_it_is_spelled(link: str, server: LocalServer) -> None:
    """Decimal, hex, octal and short IPv4 spellings, hostnames and IPv6 forms of loopback are refused."""
    import asyncio

    from d24watch.config import FetchConfig
    from d24watch.fetch import Fetcher

    server.serve("/x", "secret")

    async def go() -> None:
        async with Fetcher(FetchConfig(timeout_s=2)) as fetcher:
            await fetcher.get(link.format(port=server.port))

    with pytest.raises(FetchError, match=r"refused|cannot resolve"):
        asyncio.run(go())
    assert server.hits("/x") == 0


def test_redirect_to_a_private_address_is_refused_on_that_hop(server: LocalServer) -> None:
    """A public-looking first hop cannot bounce the fetcher onto loopback: every hop is checked.
    (The config's own URL is trusted for its first hop only.)"""
    import asyncio

    from d24watch.config import FetchConfig
    from d24watch.fetch import Fetcher

    server.routes["/r"] = redirect(server.url("/inside"))
    server.serve("/inside", "secret")

    async def go() -> None:
        async with Fetcher(FetchConfig(timeout_s=2)) as fetcher:
            await fetcher.get(server.url("/r"), trusted=True)

    with pytest.raises(FetchError, match="refused"):
        asyncio.run(go())
    assert server.hits("/inside") == 0


def test_long_redirect_chains_stop_after_five(server: LocalServer, capsys: Any, tmp_path: Path) -> None:
    for i in range(7):
        server.routes[f"/c{i}"] = redirect(server.url(f"/c{i + 1}"))
    server.serve("/c7", rss([]), "application/rss+xml")
    config = write_config(tmp_path, feed_source("chain", server.url("/c0")))
    d24(capsys, config, "init")
    assert "more than 5 redirects" in d24(capsys, config, "poll").out
    assert server.hits("/c6") == 0


def test_json_feed_is_read() -> None:
    """JSON Feed 1.1 items become entries with link, title, text, date and author."""
    import json

    body = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "J",
            "items": [
                {
                    "id": "1",
                    "url": "/a",
                    "title": "Hello",
                    "content_html": "<p>Nguyễn Văn Bình</p>",
                    "date_published": "2024-05-06T08:00:00Z",
                    "authors": [{"name": "Reporter"}],
                }
            ],
        }
    ).encode()
    [entry] = parse_feed(body, "https://x.example/feed.json").entries
    assert entry.link == "https://x.example/a" and entry.title == "Hello" and entry.summary == "Nguyễn Văn Bình"
    assert entry.author == "Reporter" and entry.published_at is not None and entry.published_at.year == 2024
    with pytest.raises(ParseError, match="JSON"):
        parse_feed(b'{"not": "a feed"}', "https://x.example/feed.json")
