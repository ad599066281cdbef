"""A small loopback world for the workspace's tests: a feed of three real-looking articles on
127.0.0.1 (a labour official's arrest, a footballer who shares his name, and the directive under a
hostile title), polled once into a real database."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import article_page, feed_source, rss, write_config
from tests.helpers import d24
from tests.prose import prose
from tests.server import LocalServer

WATCHLIST = """
[[entity]]
id = "nguyen-van-binh"
label = "Nguyễn Văn Bình"
kind = "person"
priority = "high"
terms = ["Nguyễn Văn Bình", "Nguyen Van Binh"]
context = ["arrested", "police", "MOLISA"]

[[entity]]
id = "directive-24"
label = "Directive 24"
kind = "topic"
priority = "normal"
terms = ["Directive 24", "Chỉ thị 24"]
"""

HOSTILE_TITLE = '<script>alert("t")</script><img src=x onerror=alert(1)> Directive 24 & "friends"'


@dataclass
class World:
    config: Path
    official: str
    footballer: str
    directive: str


def build_world(tmp_path: Path, server: LocalServer, capsys: Any, *, extra: str = "") -> World:
    official = server.serve(
        "/news/labour-official-arrested-2024",
        article_page(
            "Labour official arrested",
            [
                *prose(11)[:2],
                "Police in Hanoi arrested Nguyễn Văn Bình, director of legal affairs at MOLISA.",
                *prose(12)[:2],
            ],
        ),
    )
    footballer = server.serve(
        "/sport/striker-scores-twice-for-hanoi-2024",
        article_page(
            "Striker scores twice",
            [
                *prose(21)[:2],
                "Striker Nguyen Van Binh scored twice for Hanoi FC as police kept order among the fans at Hang Day.",
                *prose(22)[:2],
            ],
        ),
    )
    directive = server.serve(
        "/analysis/directive-24-and-civil-society-2024",
        article_page(
            "Directive 24", [*prose(31)[:2], "Directive 24 treats civil society as a threat.", *prose(32)[:1]]
        ),
    )
    from xml.sax.saxutils import escape

    items = [
        {"title": "Labour official arrested", "link": official, "guid": "a1", "date": "Mon, 02 Dec 2024 08:00:00 GMT"},
        {"title": "Striker scores twice", "link": footballer, "guid": "a2", "date": "Mon, 02 Dec 2024 09:00:00 GMT"},
        {"title": escape(HOSTILE_TITLE), "link": directive, "guid": "a3", "date": "Mon, 02 Dec 2024 10:00:00 GMT"},
    ]
    server.serve("/feed", rss(items), "application/rss+xml")
    config = write_config(tmp_path, feed_source("Local news", server.url("/feed")), watchlist=WATCHLIST, extra=extra)
    assert d24(capsys, config, "init").code == 0
    result = d24(capsys, config, "poll")
    assert result.code == 0 and "3 new" in result.out, result.out + result.err
    return World(config, official, footballer, directive)
