from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.receiver import Receiver
from tests.server import LocalServer

SHARED = Path(__file__).resolve().parents[2] / "shared"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def server() -> Iterator[LocalServer]:
    srv = LocalServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def hook() -> Iterator[Receiver]:
    """A webhook receiver on 127.0.0.1 that accepts every POST."""
    srv = Receiver().start()
    yield srv
    srv.stop()


def write_config(folder: Path, sources: str, *, watchlist: str | None = None, extra: str = "", fetch: str = "") -> Path:
    """A config in `folder` with the given [[sources]] text, private addresses allowed (the tests'
    servers are on loopback) and the shipped watchlist unless another is given."""
    wl = folder / "watchlist.toml"
    wl.write_text(
        watchlist if watchlist is not None else (ROOT / "config" / "watchlist.toml").read_text("utf-8"), "utf-8"
    )
    path = folder / "d24watch.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            [storage]
            database = "state/d24watch.db"
            [fetch]
            timeout = 5
            allow_private_addresses = true
            extract_workers = 1
            {fetch}
            [watch]
            watchlist = "watchlist.toml"
            [notify.file]
            mode = "digest"
            directory = "state/outbox"
            """
        )
        + extra
        + "\n"
        + textwrap.dedent(sources),
        "utf-8",
    )
    return path


def feed_source(name: str, url: str, kind: str = "feed") -> str:
    return f'\n[[sources]]\nname = "{name}"\nkind = "{kind}"\nurl = "{url}"\ninterval = "30m"\n'


def rss(items: list[dict[str, str]], title: str = "Test feed") -> str:
    body = "".join(
        "<item>"
        + f"<title>{i.get('title', '')}</title>"
        + (f"<link>{i['link']}</link>" if "link" in i else "")
        + (f"<guid>{i['guid']}</guid>" if "guid" in i else "")
        + (f"<description><![CDATA[{i['description']}]]></description>" if "description" in i else "")
        + (f"<pubDate>{i['date']}</pubDate>" if "date" in i else "")
        + "</item>"
        for i in items
    )
    return f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{title}</title>{body}</channel></rss>'


def article_page(title: str, paragraphs: list[str], canonical: str | None = None, lang: str = "en") -> str:
    link = f'<link rel="canonical" href="{canonical}">' if canonical else ""
    paras = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>{title} | Test News</title>{link}</head>'
        f'<body><nav><a href="/">Home</a> <a href="/world">World</a></nav>'
        f"<article><h1>{title}</h1>{paras}</article>"
        f"<footer>Copyright Test News. All rights reserved.</footer></body></html>"
    )
