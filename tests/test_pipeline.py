"""The core pipeline end to end against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from tests.conftest import article_page, feed_source, rss, write_config
from tests.helpers import d24, export, fetched
from tests.prose import prose
from tests.server import LocalServer

BINH = "Police in Hanoi arrested Nguyễn Văn Bình, director of legal affairs at MOLISA, under Article 337."


def _setup(tmp_path: Path, server: LocalServer, capsys: Any, items: list[dict[str, str]], **kw: Any) -> Path:
    server.serve("/feed", rss(items), "application/rss+xml", **kw)
    config = write_config(tmp_path, feed_source("Local", server.url("/feed")))
    assert d24(capsys, config, "init").code == 0
    return config


def test_poll_stores_articles_with_text_and_hits(tmp_path: Path, server: LocalServer, capsys: Any) -> None:
    """A feed's new items are fetched, extracted, stored and matched; the summary names them."""
    server.serve("/a1", article_page("Labour official detained", [*prose(1)[:2], BINH, *prose(1)[2:]]))
    server.serve("/a2", article_page("Rice harvest", prose(2)))
    config = _setup(
        tmp_path,
        server,
        capsys,
        [
            {"title": "Labour official detained", "link": server.url("/a1"), "guid": "g1"},
            {"title": "Rice harvest", "link": server.url("/a2"), "guid": "g2"},
        ],
    )
    result = d24(capsys, config, "poll")
    assert result.code == 0
    assert "Local: 2 new, 0 duplicates; matched nguyen-van-binh" in result.out
    rows = {r["url"]: r for r in fetched(export(capsys, config))}
    binh = rows[server.url("/a1")]
    assert binh["title"] == "Labour official detained"
    assert "Nguyễn Văn Bình" in binh["text"] and "Copyright Test News" not in binh["text"]
    assert binh["language"] == "en"
    [entity] = binh["entities"]
    assert entity["id"] == "nguyen-van-binh" and entity["label"] == "Nguyễn Văn Bình"
    hit = entity["hits"][0]
    assert binh["text"][hit["start"] : hit["end"]] == "Nguyễn Văn Bình"
    assert rows[server.url("/a2")]["entities"] == []


def test_unchanged_feed_is_answered_304_and_known_articles_never_refetched(
    tmp_path: Path, server: LocalServer, capsys: Any
) -> None:
    """The second poll sends the ETag back, gets 304 and fetches no article page again."""
    server.serve("/a1", article_page("One", prose(3)))
    config = _setup(tmp_path, server, capsys, [{"title": "One", "link": server.url("/a1")}], etag='"v1"')
    d24(capsys, config, "poll")
    result = d24(capsys, config, "poll")
    assert "Local: unchanged (304)" in result.out
    assert server.requests[-1][1].get("if-none-match") == '"v1"'
    assert server.hits("/a1") == 1
    # Without validators the feed is parsed again, but the known item's page is not fetched.
    server.routes["/feed"].etag = None  # type: ignore[union-attr]
    result = d24(capsys, config, "poll")
    assert "Local: 0 new, 0 duplicates" in result.out
    assert server.hits("/a1") == 1


def test_each_kind_of_duplicate_is_stored_with_duplicate_of(tmp_path: Path, server: LocalServer, capsys: Any) -> None:
    """Tracking parameters, the same page at another URL, a one-word edit, a page naming a known one
    as canonical and a reprint of a seed document are all stored as duplicates, never as new."""
    original = prose(10, 600)
    words = original[1].split()
    edited = [original[0], " ".join([*words[:5], "zebra", *words[6:]]), *original[2:]]
    seed = (Path(__file__).parents[1] / "src/d24watch/seeds/004_3606f1413247ab0c.txt").read_text("utf-8")
    seed_paragraphs = [p.strip().replace("*", "") for p in seed.split("\n\n") if len(p.strip()) > 80][:25]
    server.serve("/orig", article_page("Original", original))
    server.serve("/mirror", article_page("Original", original))
    server.serve("/edited", article_page("Original", edited))
    server.serve("/canon", article_page("Canon", prose(11), canonical=server.url("/orig")))
    server.serve("/reprint", article_page("Reprint", seed_paragraphs))
    config = _setup(
        tmp_path,
        server,
        capsys,
        [
            {"title": "Original", "link": server.url("/orig"), "guid": "1"},
            {"title": "Tracked", "link": server.url("/orig") + "?utm_source=tw&fbclid=x#top", "guid": "2"},
            {"title": "Mirror", "link": server.url("/mirror"), "guid": "3"},
            {"title": "Edited", "link": server.url("/edited"), "guid": "4"},
            {"title": "Canon", "link": server.url("/canon"), "guid": "5"},
            {"title": "Reprint", "link": server.url("/reprint"), "guid": "6"},
        ],
    )
    result = d24(capsys, config, "poll")
    assert "Local: 1 new, 5 duplicates" in result.out
    rows = {r["title"]: r for r in fetched(export(capsys, config))}
    assert rows["Original"]["duplicate_of"] is None
    for title in ("Tracked", "Mirror", "Edited", "Canon"):
        assert rows[title]["duplicate_of"] == server.url("/orig"), title
        assert rows[title]["entities"] == []
    assert rows["Reprint"]["duplicate_of"] == "urn:d24watch:seed:004_3606f1413247ab0c"
    assert server.hits("/orig") == 1  # the tracked copy was recognised before any fetch
    db = sqlite3.connect(tmp_path / "state/d24watch.db")
    reasons = dict(db.execute("SELECT title, duplicate_reason FROM articles WHERE duplicate_of IS NOT NULL"))
    assert reasons == {"Tracked": "url", "Mirror": "text", "Edited": "near", "Canon": "canonical", "Reprint": "near"}


def test_feed_text_is_kept_when_the_page_fails_and_the_page_is_tried_again(
    tmp_path: Path, server: LocalServer, capsys: Any
) -> None:
    """A page that fails leaves the feed's own text stored; the next cycle fetches the page and
    stores it as a revision, alerting only for entities the first text did not have."""
    server.serve("/p", b"down", status=503)
    summary = "Short feed summary about a trial in Hanoi. " + " ".join(prose(20, 60))
    config = _setup(tmp_path, server, capsys, [{"title": "Trial", "link": server.url("/p"), "description": summary}])
    result = d24(capsys, config, "poll")
    assert "1 new" in result.out and "1 page kept from the feed" in result.out
    [row] = fetched(export(capsys, config))
    assert row["text"].startswith("Short feed summary") and row["entities"] == []
    server.serve("/p", article_page("Trial", [*prose(21), BINH]))
    result = d24(capsys, config, "poll")
    assert "1 revised" in result.out and "matched nguyen-van-binh" in result.out
    [row] = fetched(export(capsys, config))
    assert BINH in row["text"] and row["entities"][0]["id"] == "nguyen-van-binh"
    assert server.hits("/p") == 2
    d24(capsys, config, "poll")
    assert server.hits("/p") == 2  # fetched once it succeeded, never again


def test_page_source_follows_article_links_on_the_same_site(tmp_path: Path, server: LocalServer, capsys: Any) -> None:
    """A listing page yields its same-site, article-like links; navigation and other sites are left."""
    listing = (
        "<html><body><a href='/'>Home</a> <a href='/tag/politics'>Politics</a>"
        "<a href='/news/labour-official-detained-in-hanoi-123456.html'>Detained</a>"
        "<a href='https://elsewhere.example/news/another-story-about-something-999999.html'>Other</a>"
        "</body></html>"
    )
    server.serve("/list", listing)
    server.serve("/news/labour-official-detained-in-hanoi-123456.html", article_page("Detained", [*prose(30), BINH]))
    config = write_config(tmp_path, feed_source("Listing", server.url("/list"), kind="page"))
    d24(capsys, config, "init")
    result = d24(capsys, config, "poll")
    assert "Listing: 1 new" in result.out and "matched nguyen-van-binh" in result.out
    assert [p for p, _ in server.requests] == ["/list", "/news/labour-official-detained-in-hanoi-123456.html"]


def test_a_failing_source_is_recorded_backed_off_and_the_cycle_goes_on(
    tmp_path: Path, server: LocalServer, capsys: Any
) -> None:
    """A 500 is recorded with its error; the healthy source is processed; the wait doubles."""
    server.serve("/bad", b"oops", status=500)
    server.serve("/good", rss([{"title": "Fine", "link": server.url("/a"), "description": "x"}]), "application/rss+xml")
    server.serve("/a", article_page("Fine", prose(40)))
    config = write_config(tmp_path, feed_source("Bad", server.url("/bad")) + feed_source("Good", server.url("/good")))
    d24(capsys, config, "init")
    result = d24(capsys, config, "poll")
    assert result.code == 0
    assert "Bad: failed: fetch: HTTP 500" in result.out and "Good: 1 new" in result.out
    d24(capsys, config, "poll")
    db = sqlite3.connect(tmp_path / "state/d24watch.db")
    errors, polled, next_at, last_error = db.execute(
        "SELECT consecutive_errors, last_polled_at, next_check_at, last_error FROM sources WHERE name = 'Bad'"
    ).fetchone()
    assert errors == 2 and last_error == "fetch: HTTP 500"
    from datetime import datetime

    wait = datetime.fromisoformat(next_at) - datetime.fromisoformat(polled)
    assert wait.total_seconds() == 2 * 30 * 60  # the 30m interval after the first failure, doubled after the second
    status = d24(capsys, config, "status")
    assert "fetch: HTTP 500 (x2)" in status.out


def test_item_links_to_private_addresses_are_refused(tmp_path: Path, server: LocalServer, capsys: Any) -> None:
    """With private addresses not allowed, the config's own feed URL is fetched but an item link
    to loopback is refused and never requested."""
    server.serve(
        "/feed",
        rss([{"title": "Inside", "link": server.url("/secret"), "description": "feed text"}]),
        "application/rss+xml",
    )
    server.serve("/secret", "internal")
    config = write_config(tmp_path, feed_source("Local", server.url("/feed")), fetch="")
    text = config.read_text().replace("allow_private_addresses = true", "allow_private_addresses = false")
    config.write_text(text)
    d24(capsys, config, "init")
    result = d24(capsys, config, "poll")
    assert "1 new" in result.out and "1 page kept from the feed" in result.out
    assert server.hits("/secret") == 0


def test_feed_titles_are_kept_as_the_publisher_wrote_them(tmp_path: Path, server: LocalServer, capsys: Any) -> None:
    """A title is unescaped once, by the XML parser, and never parsed as HTML again: `<!channel>`
    stays, and a literal `&amp;` stays `&amp;`; a title that is HTML (Atom `type="html"`) is read as HTML."""
    server.serve("/a1", article_page("One", prose(4)))
    server.serve("/a2", article_page("Two", prose(5)))
    config = _setup(
        tmp_path,
        server,
        capsys,
        [
            {"title": "Directive 24 &amp; the &lt;!channel&gt; test", "link": server.url("/a1")},
            {"title": "Q&amp;amp;A: AT&amp;amp;T", "link": server.url("/a2")},
        ],
    )
    server.serve(
        "/atom",
        '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>A</title>'
        f'<entry><title type="html">A &lt;b&gt;bold&lt;/b&gt; move &amp;amp; more</title><id>x</id>'
        f'<link href="{server.url("/a3")}"/></entry></feed>',
        "application/atom+xml",
    )
    server.serve("/a3", article_page("Three", prose(6)))
    config.write_text(config.read_text("utf-8") + feed_source("Atom", server.url("/atom")), "utf-8")
    assert d24(capsys, config, "poll").code == 0
    titles = {r["url"]: r["title"] for r in fetched(export(capsys, config))}
    assert titles[server.url("/a1")] == "Directive 24 & the <!channel> test"
    assert titles[server.url("/a2")] == "Q&amp;A: AT&amp;T"
    assert titles[server.url("/a3")] == "A bold move & more"
