"""Sources beyond plain feeds, end to end through the command line against loopback doubles
(tests/doubles.py says what each is built from): aggregator links resolved to the publisher's,
news sitemaps through robots.txt and sitemap indexes, Telegram channel previews, and each source's
next poll moved by what it says of its own schedule."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.conftest import article_page, rss, write_config
from tests.doubles import (
    GoogleNewsDouble,
    google_news_feed,
    gzipped,
    new_id,
    news_sitemap,
    old_id,
    plain_sitemap,
    sitemap_index,
    telegram_page,
)
from tests.helpers import d24, export, fetched
from tests.prose import prose
from tests.receiver import Receiver
from tests.server import LocalServer, Served

BINH = "Police in Hanoi arrested Nguyễn Văn Bình, director of legal affairs at MOLISA, under Article 337."
BACH = "Đặng Đình Bách, the environmental lawyer, remains in prison in Thanh Hóa."
DIRECTIVE = "Directive 24 (Chỉ thị 24-CT/TW) treats foreign ties and civil society as threats to security."


def _source(name: str, url: str, kind: str = "feed", **keys: object) -> str:
    extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items())
    return f'\n[[sources]]\nname = "{name}"\nkind = "{kind}"\nurl = "{url}"\ninterval = "30m"\n{extra}'


def _webhook(receiver: Receiver) -> str:
    return f'\n[notify.webhook]\nmode = "immediate"\nurl = "{receiver.url("/hook")}"\n'


def _alerts(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(p.body) for p in receiver.accepted()]


def _db(config: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(config.parent / "state" / "d24watch.db")
    conn.row_factory = sqlite3.Row
    return conn


# -- aggregator links --------------------------------------------------------------------------


def test_search_feed_items_resolve_to_the_publisher_and_one_story_is_stored_once(
    tmp_path: Path, server: LocalServer, hook: Receiver, capsys: Any
) -> None:
    """Three items of a Google-News-style feed: one whose ID carries the URL, one resolved through
    the interstitial page and the decoding endpoint, one whose page gives nothing (kept with the
    feed's text and its aggregator link, and resolved on the next poll). The publisher's pages are
    fetched, matched and alerted under their own URLs; the story the outlet's own feed also lists
    is stored once."""
    gn = GoogleNewsDouble(server)
    reuters = server.serve(
        "/world/asia/vietnam-labour-official-arrested-2024-12-02/",
        article_page("Vietnam arrests labour official", [*prose(1)[:2], BINH]),
    )
    ap = server.serve(
        "/article/vietnam-lawyer-prison-bach-0123456789", article_page("Lawyer still jailed", [*prose(2)[:2], BACH])
    )
    later = server.serve(
        "/news/directive-24-explained-2024", article_page("What Directive 24 says", [*prose(3)[:2], DIRECTIVE])
    )
    one, two, three = old_id(reuters), new_id("two-token"), new_id("three-token")
    gn.known[two] = ap
    gn.interstitial(two)
    gn.interstitial(three, params=False)
    server.serve(
        "/gnews",
        google_news_feed(
            [
                ("Vietnam arrests labour official", gn.link(one), "Reuters", "https://www.reuters.com"),
                ("Lawyer still jailed", gn.link(two), "AP News", "https://apnews.com"),
                ("What Directive 24 says", gn.link(three), "The Outlet", "https://outlet.example"),
            ]
        ),
        "application/rss+xml",
    )
    server.serve(
        "/outlet-feed",
        rss([{"title": "Lawyer still jailed", "link": ap, "guid": "ap-1", "description": BACH}]),
        "application/rss+xml",
    )
    sources = _source("Outlet", server.url("/outlet-feed")) + _source(
        "Search", server.url("/gnews"), aggregator="google-news"
    )
    config = write_config(tmp_path, sources, extra=_webhook(hook), fetch="aggregator_gap = 0")
    assert d24(capsys, config, "init").code == 0
    first = d24(capsys, config, "poll")
    assert first.code == 0, first.err

    rows = {r["url"]: r for r in export(capsys, config)}
    assert rows[reuters]["via"] == gn.link(one) and rows[reuters]["publisher"] == "Reuters"
    assert rows[reuters]["title"] == "Vietnam arrests labour official"  # " - Reuters" taken off
    assert "Nguyễn Văn Bình" in rows[reuters]["text"]
    assert [r["url"] for r in fetched(export(capsys, config))].count(ap) == 1
    assert rows[ap]["duplicate_of"] is None and "Đặng Đình Bách" in rows[ap]["text"]
    unresolved = rows[gn.link(three)]
    assert unresolved["via"] == gn.link(three) and unresolved["title"].startswith("What Directive 24 says")
    assert gn.asked == [two]  # the ID that carries its URL is never asked; the third page gave nothing to ask
    assert server.hits(f"/rss/articles/{one}?oc=5") == 0

    alerted = {a["article"]["url"]: a for a in _alerts(hook)}
    assert reuters in alerted and alerted[reuters]["article"]["via"] == gn.link(one)
    assert ap in alerted and gn.link(two) not in alerted
    with _db(config) as conn:
        row = conn.execute("SELECT resolved, unresolved FROM sources WHERE name = 'Search'").fetchone()
        assert (row["resolved"], row["unresolved"]) == (2, 1)
        pending = conn.execute("SELECT page_pending FROM articles WHERE url = ?", (gn.link(three),)).fetchone()
        assert pending[0] == 1

    status = d24(capsys, config, "status")
    assert status.code == 0
    feed_line = next(line for line in status.out.splitlines() if line.startswith("feed "))
    assert feed_line.split()[3:5] == ["2", "1"]

    # The endpoint learns the third URL: the next poll moves the article to it and reads its page.
    gn.known[three] = later
    gn.interstitial(three)
    asked_before = len(gn.asked)
    assert d24(capsys, config, "poll").code == 0
    assert gn.asked[asked_before:] == [three]
    rows = {r["url"]: r for r in export(capsys, config)}
    assert gn.link(three) not in rows
    assert rows[later]["via"] == gn.link(three) and "Chỉ thị 24-CT/TW" in rows[later]["text"]

    # Nothing is asked again: resolved IDs are kept, settled items skipped.
    asked_before = len(gn.asked)
    assert d24(capsys, config, "poll").code == 0
    assert len(gn.asked) == asked_before
    assert len(_alerts(hook)) == len(alerted) + 1  # the third article's directive, once


def test_a_search_item_resolved_late_becomes_a_copy_of_the_outlets_own_article(
    tmp_path: Path, server: LocalServer, capsys: Any
) -> None:
    """An item that could not be resolved is stored under its aggregator link; the outlet's own
    feed stores the story under its URL. Once the link resolves to that URL, the two are one
    article: the search item becomes its copy, out of search and the near-duplicate index."""
    gn = GoogleNewsDouble(server)
    story = server.serve(
        "/news/lawyer-still-jailed-2024-12-02", article_page("Lawyer still jailed", [*prose(2)[:2], BACH])
    )
    late = new_id("late-token")
    gn.interstitial(late, params=False)
    server.serve(
        "/gnews",
        google_news_feed([("Lawyer still jailed", gn.link(late), "Outlet", "https://outlet.example")]),
        "application/rss+xml",
    )
    server.serve(
        "/outlet-feed", rss([{"title": "Lawyer still jailed", "link": story, "guid": "o-1"}]), "application/rss+xml"
    )
    sources = _source("Outlet", server.url("/outlet-feed")) + _source(
        "Search", server.url("/gnews"), aggregator="google-news"
    )
    config = write_config(tmp_path, sources, fetch="aggregator_gap = 0")
    assert d24(capsys, config, "init").code == 0
    assert d24(capsys, config, "poll").code == 0
    originals = [r for r in fetched(export(capsys, config)) if r["duplicate_of"] is None]
    assert sorted(r["url"] for r in originals) == sorted([story, gn.link(late)])

    gn.known[late] = story
    gn.interstitial(late)
    assert d24(capsys, config, "poll").code == 0
    rows = fetched(export(capsys, config))
    assert [r["url"] for r in rows if r["duplicate_of"] is None] == [story]
    [copy] = [r for r in rows if r["source"] == "Search"]
    assert copy["url"] == story and copy["via"] == gn.link(late) and copy["duplicate_of"] == story
    search = d24(capsys, config, "search", "Lawyer still jailed")
    assert search.out.count(story) == 1


def test_aggregator_is_set_for_news_google_com_and_refused_for_other_kinds(tmp_path: Path, capsys: Any) -> None:
    """A news.google.com feed needs no key; `aggregator` on a sitemap is a config error."""
    from d24watch.config import load_config

    ok = write_config(tmp_path, _source("G", "https://news.google.com/rss/search?q=x"))
    assert load_config(ok).sources[0].aggregator == "google-news"
    bad = write_config(tmp_path, _source("S", "https://example.org/sitemap.xml", "sitemap", aggregator="google-news"))
    result = d24(capsys, bad, "check-config")
    assert result.code == 2 and 'sources[0].aggregator: only for kind = "feed"' in result.err


# -- sitemaps ------------------------------------------------------------------------------------


def test_news_sitemap_via_robots_and_an_index_with_a_gzip_child_fetches_only_what_is_new(
    tmp_path: Path, server: LocalServer, hook: Receiver, capsys: Any
) -> None:
    """A site root: robots.txt names a sitemap index whose children are a news sitemap and a
    gzipped plain sitemap. The first poll reads both and stores every page with the sitemap's
    title, date and language; the second fetches no page again and no child whose lastmod held;
    a page added to the news sitemap is the only one fetched on the third."""
    now = datetime.now(UTC).replace(microsecond=0)
    pages = {
        "/thoi-su/bat-giam-nguyen-van-binh-4801234.html": ("Bắt tạm giam ông Nguyễn Văn Bình", [*prose(1)[:2], BINH]),
        "/thoi-su/mua-lua-dong-bang-4801235.html": ("Mùa lúa đồng bằng", prose(2)),
        "/archive/old-story-about-rice-4700001.html": ("Old rice story", prose(3)),
    }
    for path, (title, paragraphs) in pages.items():
        server.serve(path, article_page(title, paragraphs, lang="vi"))
    news = [
        (server.url(p), pages[p][0], now - timedelta(hours=h)) for p, h in zip(list(pages)[:2], (1, 2), strict=True)
    ]
    server.serve("/news-sitemap.xml", news_sitemap(news), "application/xml")
    server.serve(
        "/archive-sitemap.xml.gz",
        gzipped(plain_sitemap([(server.url("/archive/old-story-about-rice-4700001.html"), "2024-11-01")])),
        "application/x-gzip",
    )
    index = sitemap_index(
        [(server.url("/news-sitemap.xml"), now.isoformat()), (server.url("/archive-sitemap.xml.gz"), "2024-11-01")]
    )
    server.serve("/sitemap-index.xml", index, "application/xml")
    server.serve(
        "/robots.txt", f"User-agent: *\nDisallow: /admin\nSitemap: {server.url('/sitemap-index.xml')}\n", "text/plain"
    )
    config = write_config(tmp_path, _source("Báo Thử", server.url("/"), "sitemap"), extra=_webhook(hook))
    assert d24(capsys, config, "init").code == 0
    result = d24(capsys, config, "poll")
    assert result.code == 0 and "Báo Thử: 3 new" in result.out, result.out + result.err

    rows = {r["url"]: r for r in export(capsys, config)}
    binh = rows[server.url("/thoi-su/bat-giam-nguyen-van-binh-4801234.html")]
    assert binh["title"] == "Bắt tạm giam ông Nguyễn Văn Bình" and binh["language"] == "vi"
    assert binh["published"] == (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert [a["article"]["url"] for a in _alerts(hook)] == [binh["url"]]

    server.requests.clear()
    assert d24(capsys, config, "poll").code == 0
    fetched_paths = [path for path, _ in server.requests]
    assert not any(p in pages for p in fetched_paths), fetched_paths
    assert "/archive-sitemap.xml.gz" not in fetched_paths  # its lastmod held

    added = "/thoi-su/phien-toa-moi-4801240.html"
    server.serve(added, article_page("Phiên tòa mới", prose(4), lang="vi"))
    server.serve(
        "/news-sitemap.xml", news_sitemap([(server.url(added), "Phiên tòa mới", now), *news]), "application/xml"
    )
    server.routes["/sitemap-index.xml"] = Served(
        sitemap_index([(server.url("/news-sitemap.xml"), (now + timedelta(minutes=5)).isoformat())]).encode(),
        "application/xml",
    )
    server.requests.clear()
    result = d24(capsys, config, "poll")
    assert "Báo Thử: 1 new" in result.out, result.out
    assert [p for p, _ in server.requests if p in pages or p == added] == [added]
    assert len(_alerts(hook)) == 1


def test_plain_sitemap_url_with_lastmod_change_is_read_again(tmp_path: Path, server: LocalServer, capsys: Any) -> None:
    """A sitemap named directly: a page whose lastmod moves is fetched again and revised."""
    path = "/2024/12/story-about-the-labour-ministry-arrests"
    now = datetime.now(UTC).replace(microsecond=0)
    server.serve(path, article_page("Ministry arrests", prose(1)))
    server.serve(
        "/sitemap.xml", plain_sitemap([(server.url(path), (now - timedelta(hours=3)).isoformat())]), "application/xml"
    )
    config = write_config(tmp_path, _source("Plain", server.url("/sitemap.xml"), "sitemap"))
    assert d24(capsys, config, "init").code == 0
    assert "Plain: 1 new" in d24(capsys, config, "poll").out
    server.serve(path, article_page("Ministry arrests", [*prose(1), BINH]))
    server.serve("/sitemap.xml", plain_sitemap([(server.url(path), now.isoformat())]), "application/xml")
    result = d24(capsys, config, "poll")
    assert "1 revised" in result.out, result.out
    [row] = fetched(export(capsys, config))
    assert "Nguyễn Văn Bình" in row["text"]


# -- Telegram ------------------------------------------------------------------------------------


def test_telegram_channel_posts_alert_once_each_with_the_t_me_link(
    tmp_path: Path, server: LocalServer, hook: Receiver, capsys: Any
) -> None:
    """Three posts, then one more: each post is an article under its permanent t.me link, its
    outbound links kept; only the new post is stored on the second poll, and each alerts once."""
    t0 = datetime(2024, 12, 2, 1, 0, tzinfo=UTC)
    posts = [
        (101, f'Tin mới: {BINH}<br/>Chi tiết: <a href="https://outlet.example/story-1">outlet.example</a>', t0),
        (102, "Thời tiết hôm nay ở Hà Nội: nắng nhẹ, không mưa.", t0 + timedelta(hours=1)),
        (103, f"<b>Cập nhật</b>: {BACH}", t0 + timedelta(hours=2)),
    ]
    server.serve("/s/tinvn", telegram_page("tinvn", posts), "text/html; charset=utf-8")
    config = write_config(
        tmp_path, _source("Tin VN", server.url("/s/tinvn"), "telegram", language="vi"), extra=_webhook(hook)
    )
    assert d24(capsys, config, "init").code == 0
    result = d24(capsys, config, "poll")
    assert result.code == 0 and "Tin VN: 3 new" in result.out, result.out + result.err
    rows = {r["url"]: r for r in fetched(export(capsys, config))}
    assert set(rows) == {"https://t.me/tinvn/101", "https://t.me/tinvn/102", "https://t.me/tinvn/103"}
    first = rows["https://t.me/tinvn/101"]
    assert first["links"] == ["https://outlet.example/story-1"] and first["published"] == "2024-12-02T01:00:00Z"
    assert "Nguyễn Văn Bình" in first["text"] and first["language"] == "vi"
    assert server.hits("/s/tinvn") == 1  # the post's text is the article: no t.me page is fetched
    assert sorted(a["article"]["url"] for a in _alerts(hook)) == ["https://t.me/tinvn/101", "https://t.me/tinvn/103"]

    posts.append((104, f"Thêm: {DIRECTIVE}", t0 + timedelta(hours=3)))
    server.serve("/s/tinvn", telegram_page("tinvn", posts[1:]), "text/html; charset=utf-8")
    result = d24(capsys, config, "poll")
    assert "Tin VN: 1 new" in result.out, result.out
    urls = [a["article"]["url"] for a in _alerts(hook)]
    assert sorted(urls) == ["https://t.me/tinvn/101", "https://t.me/tinvn/103", "https://t.me/tinvn/104"]
    assert d24(capsys, config, "poll").code == 0 and len(_alerts(hook)) == 3


def test_telegram_first_poll_reads_older_pages_and_follows_links_when_asked(
    tmp_path: Path, server: LocalServer, capsys: Any
) -> None:
    """The first poll goes back with ?before=ID up to max_items_per_source; with follow_links the
    article a post links to is stored as well."""
    t0 = datetime(2024, 12, 1, tzinfo=UTC)
    story = server.serve(
        "/story/labour-ministry-official-arrested-2024", article_page("Official arrested", [*prose(1)[:2], BINH])
    )
    newest = [(n, f"Post number {n} about the weather today.", t0 + timedelta(hours=n)) for n in range(21, 41)]
    older = [(n, f"Post number {n} about rice prices.", t0 + timedelta(hours=n)) for n in range(1, 21)]
    older[-1] = (20, f'Read this: <a href="{story}">story</a>', t0 + timedelta(hours=20))
    server.serve("/s/chan", telegram_page("chan", newest))
    server.serve("/s/chan?before=21", telegram_page("chan", older))
    config = write_config(
        tmp_path,
        _source("Chan", server.url("/s/chan"), "telegram", follow_links=True),
        fetch="max_items_per_source = 30",
    )
    assert d24(capsys, config, "init").code == 0
    assert d24(capsys, config, "poll").code == 0
    rows = {r["url"]: r for r in export(capsys, config)}
    posts = sorted(int(u.rsplit("/", 1)[1]) for u in rows if u.startswith("https://t.me/"))
    assert server.hits("/s/chan?before=21") == 1
    assert posts[-1] == 40 and len(posts) >= 20 and 20 in posts
    assert story in rows and "Nguyễn Văn Bình" in rows[story]["text"]


# -- the feed's own schedule ---------------------------------------------------------------------


def test_ttl_and_cache_control_move_the_next_poll_within_bounds(
    tmp_path: Path, server: LocalServer, capsys: Any
) -> None:
    """A feed with <ttl>90</ttl> is polled after 90 minutes, not 30; a Cache-Control max-age of a
    day is held to max_interval; status says why."""
    server.serve(
        "/ttl",
        rss([{"title": "One", "link": server.url("/p1")}]).replace(
            "<title>Test feed</title>", "<title>Test feed</title><ttl>90</ttl>"
        ),
        "application/rss+xml",
    )
    server.serve("/p1", article_page("One", prose(1)))
    server.serve(
        "/cached",
        rss([{"title": "Two", "link": server.url("/p2")}]),
        "application/rss+xml",
        headers={"Cache-Control": "public, max-age=86400"},
    )
    server.serve("/p2", article_page("Two", prose(2)))
    sources = _source("TTL", server.url("/ttl")) + _source("Cached", server.url("/cached"), max_interval="2h")
    config = write_config(tmp_path, sources)
    assert d24(capsys, config, "init").code == 0
    started = datetime.now(UTC)
    assert d24(capsys, config, "poll").code == 0
    with _db(config) as conn:
        rows = {r["name"]: r for r in conn.execute("SELECT name, next_check_at, next_reason FROM sources")}
    ttl_due = datetime.fromisoformat(rows["TTL"]["next_check_at"].replace("Z", "+00:00")) - started
    cached_due = datetime.fromisoformat(rows["Cached"]["next_check_at"].replace("Z", "+00:00")) - started
    assert timedelta(minutes=89) < ttl_due < timedelta(minutes=100)
    assert rows["TTL"]["next_reason"] == "90m: the feed's ttl 90m"
    assert timedelta(minutes=119) < cached_due < timedelta(minutes=133)
    assert rows["Cached"]["next_reason"] == "2h: Cache-Control max-age 1d, held to max_interval 2h"
    status = d24(capsys, config, "status").out
    assert "(90m: the feed's ttl 90m)" in status


def test_metrics_count_per_source_kind_what_was_found_resolved_and_failed() -> None:
    from d24watch.metrics import Metrics
    from d24watch.models import SourceReport

    metrics = Metrics()
    metrics.source(SourceReport("Search", ok=True, new=2, kind="feed", found=3, resolved=2, unresolved=1))
    metrics.source(SourceReport("Chan", ok=False, error="fetch: HTTP 500", kind="telegram"))
    text = metrics.render().decode()
    assert 'd24watch_kind_items_found_total{kind="feed"} 3.0' in text
    assert 'd24watch_aggregator_links_total{kind="feed",outcome="resolved"} 2.0' in text
    assert 'd24watch_aggregator_links_total{kind="feed",outcome="unresolved"} 1.0' in text
    assert 'd24watch_kind_polls_total{kind="telegram",outcome="error"} 1.0' in text
