"""`d24watch explain`: for a stored article, a page fetched now, or a saved file, what extraction
kept, the dedupe decision, and every watchlist rule's outcome."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import article_page, feed_source, rss, write_config
from tests.helpers import d24
from tests.prose import prose
from tests.server import LocalServer

BINH = "Police in Hanoi arrested Nguyễn Văn Bình, director of legal affairs at MOLISA, under Article 337."


def _world(tmp_path: Path, server: LocalServer, capsys: Any) -> Path:
    body = [*prose(81)[:3], BINH, *prose(81)[3:]]
    server.serve("/story", article_page("Labour official detained", body))
    server.serve("/reprint", article_page("Labour official detained", body))
    server.serve(
        "/feed",
        rss(
            [
                {"title": "Labour official detained", "link": server.url("/story"), "guid": "1"},
                {"title": "Reprint", "link": server.url("/reprint"), "guid": "2"},
            ]
        ),
    )
    config = write_config(tmp_path, feed_source("Local", server.url("/feed")))
    assert d24(capsys, config, "init").code == 0
    assert d24(capsys, config, "poll").code == 0
    return config


def test_explain_a_stored_hit_shows_the_form_its_context_and_the_dedupe_decision(
    tmp_path: Path, server: LocalServer, capsys: Any
) -> None:
    config = _world(tmp_path, server, capsys)
    result = d24(capsys, config, "explain", server.url("/story"))
    assert result.code == 0, result.err
    assert f"stored page: {server.url('/story')}" in result.out
    assert "dedupe: original" in result.out
    assert "nguyen-van-binh (Nguyễn Văn Bình): named" in result.out
    assert "form term: 'Nguyễn Văn Bình' at text" in result.out
    assert "descriptors: MOLISA, legal affairs" in result.out


def test_explain_a_duplicate_names_its_original_the_rule_and_the_estimates(
    tmp_path: Path, server: LocalServer, capsys: Any
) -> None:
    config = _world(tmp_path, server, capsys)
    result = d24(capsys, config, "explain", server.url("/reprint"), "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["dedupe"]["verdict"] == "duplicate"
    assert report["dedupe"]["of"] == server.url("/story") and report["dedupe"]["rule"] == "text"
    assert report["dedupe"]["jaccard"] == 1.0 and report["dedupe"]["containment"] == 1.0


def test_explain_a_miss_names_the_missing_context(tmp_path: Path, server: LocalServer, capsys: Any) -> None:
    """Nguyễn Văn Bình without his ministry or case: the name is found, no context word is."""
    config = _world(tmp_path, server, capsys)
    page = tmp_path / "governor.html"
    page.write_text(
        article_page("Banking reform", [*prose(82)[:2], "Governor Nguyễn Văn Bình presented the plan.", *prose(82)[2:]])
    )
    result = d24(capsys, config, "explain", "--file", str(page))
    assert result.code == 0, result.err
    assert "nguyen-van-binh (Nguyễn Văn Bình): left out: no context word" in result.out
    assert "  context: none found" in result.out
    assert "dedupe: original" in result.out


def test_explain_shows_the_unless_and_exclude_that_keep_a_namesake_out(
    tmp_path: Path, server: LocalServer, capsys: Any
) -> None:
    """The 2008 directive on traditional medicine (unless) and the Prime Minister's 24/CT-TTg (exclude)."""
    config = _world(tmp_path, server, capsys)
    dong_y = tmp_path / "dong-y.html"
    dong_y.write_text(
        article_page("Đông y", ["Năm năm thực hiện Chỉ thị 24-CT/TW về phát triển nền Đông y.", *prose(83)])
    )
    result = d24(capsys, config, "explain", "--file", str(dong_y), "--json")
    [entity] = [e for e in json.loads(result.out)["entities"] if e["id"] == "directive-24"]
    assert entity["matched"] is False and entity["unless"] == ["Đông y"]
    assert entity["verdict"] == "left out: an `unless` word occurs"
    ttg = tmp_path / "ttg.html"
    ttg.write_text(article_page("Thiên tai", ["Thủ tướng ban hành Chỉ thị 24/CT-TTg về an ninh quốc gia.", *prose(84)]))
    result = d24(capsys, config, "explain", "--file", str(ttg))
    assert "directive-24 (Directive 24): left out: every form lies inside an `exclude` phrase" in result.out
    assert "excluded: 'Chỉ thị 24' at text" in result.out


def test_explain_fetches_through_the_guards_stores_nothing_and_says_when_there_is_no_page(
    tmp_path: Path, server: LocalServer, capsys: Any
) -> None:
    config = _world(tmp_path, server, capsys)
    server.serve("/new", article_page("Another", [*prose(85)[:2], BINH, *prose(85)[2:]]))
    result = d24(capsys, config, "explain", "--fetch", server.url("/new"), "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["origin"] == "fetched" and report["dedupe"]["verdict"] == "original"
    assert [e["id"] for e in report["entities"] if e["matched"]] == ["nguyen-van-binh"]
    assert d24(capsys, config, "explain", server.url("/new")).code == 2  # nothing was stored
    missing = d24(capsys, config, "explain", "http://nowhere.example/x")
    assert missing.code == 2 and missing.err.startswith("d24watch: no stored article has the URL")
    gone = d24(capsys, config, "explain", "--fetch", server.url("/gone"))
    assert gone.code == 2 and "HTTP 404" in gone.err
