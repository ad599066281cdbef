"""Copies and originals end to end, against real local servers: a near copy that names someone its
original does not is an original and alerts; a clean reprint is folded away; of copies arriving
together the original is the earliest published, then the page whose canonical link names itself."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import article_page, feed_source, rss, write_config
from tests.helpers import d24, export, fetched
from tests.prose import prose
from tests.receiver import Receiver
from tests.server import LocalServer

BINH = "Police in Hanoi arrested Nguyễn Văn Bình, director of legal affairs at MOLISA, under Article 337."
BACH = "The same week the environmental lawyer Đặng Đình Bách, jailed for tax evasion, began a hunger strike."


def _config(tmp_path: Path, sources: str, hook: Receiver) -> Path:
    channel = f'\n[notify.webhook]\nmode = "immediate"\nurl = "{hook.url("/hook")}"\n'
    return write_config(tmp_path, sources, extra=channel)


def _alerts(hook: Receiver) -> list[tuple[str, list[str]]]:
    out = []
    for post in hook.posts:
        body = json.loads(post.body)
        out.append((body["article"]["url"], [e["id"] for e in body["entities"]]))
    return sorted(out)


def test_a_near_copy_that_adds_a_detainee_is_an_original_and_a_clean_reprint_is_not(
    tmp_path: Path, server: LocalServer, hook: Receiver, capsys: Any
) -> None:
    """Day 1 a story names Nguyễn Văn Bình. Day 2 a follow-up repeats it word for word and adds a
    paragraph naming Đặng Đình Bách: it is stored as an original and alerts; a reprint on another
    site that adds nobody is a duplicate and sends nothing."""
    body = [*prose(71)[:3], BINH, *prose(71)[3:]]
    server.serve("/first", article_page("Labour official detained", body))
    server.serve("/feed", rss([{"title": "Labour official detained", "link": server.url("/first"), "guid": "1"}]))
    config = _config(tmp_path, feed_source("Local", server.url("/feed")), hook)
    assert d24(capsys, config, "init").code == 0
    assert d24(capsys, config, "poll").code == 0

    server.serve("/follow-up", article_page("Labour official detained", [*body, BACH]))
    server.serve("/reprint", article_page("Labour official detained", body))
    server.serve(
        "/feed",
        rss(
            [
                {"title": "Labour official detained", "link": server.url("/first"), "guid": "1"},
                {"title": "Labour official detained (updated)", "link": server.url("/follow-up"), "guid": "2"},
            ]
        ),
    )
    server.serve("/other-feed", rss([{"title": "Reprint", "link": server.url("/reprint"), "guid": "r"}]))
    config.write_text(config.read_text("utf-8") + feed_source("Other", server.url("/other-feed")), "utf-8")
    assert d24(capsys, config, "poll").code == 0

    rows = {r["url"]: r for r in fetched(export(capsys, config))}
    follow_up, reprint = rows[server.url("/follow-up")], rows[server.url("/reprint")]
    assert follow_up["duplicate_of"] is None
    assert {e["id"] for e in follow_up["entities"]} == {"nguyen-van-binh", "dang-dinh-bach"}
    assert reprint["duplicate_of"] == server.url("/first")
    assert _alerts(hook) == [
        (server.url("/first"), ["nguyen-van-binh"]),
        (server.url("/follow-up"), ["dang-dinh-bach", "nguyen-van-binh"]),
    ]


def test_of_two_copies_in_one_poll_the_alert_names_the_page_whose_canonical_link_names_itself(
    tmp_path: Path, server: LocalServer, hook: Receiver, capsys: Any
) -> None:
    """A feed that lists the AMP copy before the page itself: the page is the original (its
    canonical link names it), the AMP copy is its duplicate, and the one alert names the page."""
    body = [*prose(72)[:3], BINH, *prose(72)[3:]]
    page = server.url("/story")
    server.serve("/amp/story", article_page("Labour official detained", body, canonical=page))
    server.serve("/story", article_page("Labour official detained", body, canonical=page))
    items = [
        {"title": "Labour official detained", "link": server.url("/amp/story"), "guid": "amp"},
        {"title": "Labour official detained", "link": page, "guid": "page"},
    ]
    server.serve("/feed", rss(items))
    config = _config(tmp_path, feed_source("Local", server.url("/feed")), hook)
    assert d24(capsys, config, "init").code == 0
    assert d24(capsys, config, "poll").code == 0
    rows = {r["url"]: r for r in fetched(export(capsys, config))}
    assert rows[page]["duplicate_of"] is None
    assert rows[server.url("/amp/story")]["duplicate_of"] == page
    assert _alerts(hook) == [(page, ["nguyen-van-binh"])]


def test_of_two_copies_in_one_poll_the_earliest_published_is_the_original(
    tmp_path: Path, server: LocalServer, hook: Receiver, capsys: Any
) -> None:
    """A feed lists a later reprint before the earlier story: the earlier one is the original."""
    body = [*prose(73)[:3], BINH, *prose(73)[3:]]
    server.serve("/reprint", article_page("Labour official detained", body))
    server.serve("/original", article_page("Labour official detained", body))
    items = [
        {"title": "Reprint", "link": server.url("/reprint"), "guid": "b", "date": "Tue, 07 May 2024 09:00:00 GMT"},
        {"title": "Original", "link": server.url("/original"), "guid": "a", "date": "Mon, 06 May 2024 08:00:00 GMT"},
    ]
    server.serve("/feed", rss(items))
    config = _config(tmp_path, feed_source("Local", server.url("/feed")), hook)
    assert d24(capsys, config, "init").code == 0
    assert d24(capsys, config, "poll").code == 0
    rows = {r["url"]: r for r in fetched(export(capsys, config))}
    assert rows[server.url("/original")]["duplicate_of"] is None
    assert rows[server.url("/reprint")]["duplicate_of"] == server.url("/original")
    assert _alerts(hook) == [(server.url("/original"), ["nguyen-van-binh"])]


def _sidebar(seed: int) -> list[str]:
    """A site's recurring block as trafilatura keeps it: six teaser paragraphs of about 30 words."""
    return [f"Other opinion columns. {' '.join(' '.join(prose(seed + k, words=45)).split()[:30])}." for k in range(6)]


CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "extraction"
Page = Callable[[str, list[str]], str]


def _in_template(template: bytes) -> Page:
    """Pages made from a real site's markup: its article paragraphs replaced by ours."""
    import lxml.html

    def page(title: str, paragraphs: list[str]) -> str:
        doc = lxml.html.fromstring(template)
        for link in doc.xpath("//link[@rel='canonical'] | //meta[@property='og:url']"):
            link.getparent().remove(link)  # the template's own address would make every page one article
        container = max(doc.iter(), key=lambda n: len(n.findall("p")) if isinstance(n.tag, str) else 0)
        for old in container.findall("p"):
            container.remove(old)
        for text in paragraphs:
            element = lxml.html.Element("p")
            element.text = text
            container.append(element)
        for node in doc.iter("title", "h1"):
            for child in list(node):
                node.remove(child)
            node.text = title
        return str(lxml.html.tostring(doc, encoding="unicode"))

    return page


def _templates(kind: str) -> tuple[Page, Page]:
    if kind == "test":
        return article_page, article_page
    pages = {name: sorted((CORPUS / name / "html").glob("*.htm*")) for name in ("dantri", "newspaper4k")}
    if not all(pages.values()):
        pytest.skip(f"the real news templates are not at {CORPUS}")
    cnn = [p for p in pages["newspaper4k"] if p.name.startswith("cnn")] or pages["newspaper4k"]
    return _in_template(pages["dantri"][0].read_bytes()), _in_template(cnn[0].read_bytes())


@pytest.mark.parametrize("templates", ["test", "real"])
def test_short_articles_sharing_a_long_site_block_are_originals_and_reprints_are_found_despite_templates(
    tmp_path: Path, server: LocalServer, hook: Receiver, capsys: Any, templates: str
) -> None:
    """Twenty short articles of one site, each carrying the same long sidebar (longer than its own
    text), are twenty originals; one that repeats an earlier story and adds a second detainee is an
    original too. On a second site, whose template leaks a sidebar of its own, a reprint of one of
    them is recognised as a copy, and so is a clean reprint; each distinct article alerts once."""
    page_a, page_b = _templates(templates)
    side_a, side_b = _sidebar(500), _sidebar(600)
    bodies = [" ".join(prose(700 + n, words=70)) for n in range(20)]
    bodies[3] += " " + BINH
    bodies[7] += " " + BACH
    bodies[15] = bodies[3] + " " + BACH
    items = []
    for n, body in enumerate(bodies):
        server.serve(f"/a/{n}", page_a(f"Story {n}", [body, *side_a]))
        items.append({"title": f"Story {n}", "link": server.url(f"/a/{n}"), "guid": f"a{n}"})
    server.serve("/a/feed", rss(items))
    other = server.url("/").replace("127.0.0.1", "localhost").rstrip("/")
    b_items = []
    for n in range(4):
        server.serve(f"/b/{n}", page_b(f"Other {n}", [" ".join(prose(800 + n, words=120)), *side_b]))
        b_items.append({"title": f"Other {n}", "link": f"{other}/b/{n}", "guid": f"b{n}"})
    server.serve("/b/reprint", page_b("Story 7 reprinted", [bodies[7], *side_b]))
    server.serve("/b/clean", article_page("Story 3 reprinted", [bodies[3]]))
    b_items += [
        {"title": "Story 7 reprinted", "link": f"{other}/b/reprint", "guid": "b-reprint"},
        {"title": "Story 3 reprinted", "link": f"{other}/b/clean", "guid": "b-clean"},
    ]
    server.serve("/b/feed", rss(b_items))
    sources = feed_source("Site A", server.url("/a/feed")) + feed_source("Site B", f"{other}/b/feed")
    config = _config(tmp_path, sources, hook)
    assert d24(capsys, config, "init").code == 0
    first = d24(capsys, config, "poll", "--source", "Site A")
    assert "Site A: 20 new, 0 duplicates" in first.out
    second = d24(capsys, config, "poll", "--source", "Site B")
    assert "Site B: 4 new, 2 duplicates" in second.out

    rows = {r["url"]: r for r in fetched(export(capsys, config))}
    assert rows[f"{other}/b/reprint"]["duplicate_of"] == server.url("/a/7")
    assert rows[f"{other}/b/clean"]["duplicate_of"] == server.url("/a/3")
    assert {e["id"] for e in rows[server.url("/a/15")]["entities"]} == {"nguyen-van-binh", "dang-dinh-bach"}
    assert _alerts(hook) == sorted(
        [
            (server.url("/a/3"), ["nguyen-van-binh"]),
            (server.url("/a/7"), ["dang-dinh-bach"]),
            (server.url("/a/15"), ["dang-dinh-bach", "nguyen-van-binh"]),
        ]
    )

    # Later pages of site A alone: the sidebar is known from the store now, and explain says so.
    server.serve("/a/20", page_a("Story 20", [" ".join(prose(720, words=70)), *side_a]))
    explained = d24(capsys, config, "explain", "--fetch", server.url("/a/20"), "--json")
    dedupe = json.loads(explained.out)["dedupe"]
    assert dedupe["verdict"] == "original" and dedupe["site_blocks_set_aside"] >= 6
    assert dedupe["boilerplate_shingles_set_aside"] > 100
    server.serve("/a/feed", rss([*items, {"title": "Story 20", "link": server.url("/a/20"), "guid": "a20"}]))
    assert "Site A: 1 new, 0 duplicates" in d24(capsys, config, "poll", "--source", "Site A").out
