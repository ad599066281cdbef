"""A public Telegram channel's preview page (`https://t.me/s/NAME`) to posts. Pure; runs in worker
processes. The page lists the newest posts, each a `div.tgme_widget_message` with `data-post="NAME/ID"`,
its text in `.tgme_widget_message_text`, its time in `a.tgme_widget_message_date time[datetime]`,
whose link is the post's permanent address; `?before=ID` lists the posts older than ID. The page is
hostile input like any other: it is parsed with lxml's HTML parser, never rendered or run."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from d24watch.errors import ParseError
from d24watch.models import FeedEntry
from d24watch.text import repair_text

_POST = re.compile(r"^([A-Za-z0-9_]{1,64})/(\d{1,12})$")
TITLE_CHARS = 120
TELEGRAM_HOSTS = frozenset({"t.me", "telegram.me", "telegram.dog"})


@dataclass(frozen=True, slots=True)
class Post:
    id: int
    link: str  # https://t.me/NAME/ID
    text: str
    published_at: datetime | None
    links: tuple[str, ...]  # outbound links in the text, each once, in order


@dataclass(frozen=True, slots=True)
class ChannelPage:
    title: str
    posts: tuple[Post, ...]  # oldest first, as the page lists them


def before_url(url: str, post_id: int) -> str:
    """The preview page listing the posts older than `post_id`."""
    base = url.split("#", 1)[0].split("?", 1)[0]
    return f"{base}?before={post_id}"


def parse_channel(body: bytes, url: str) -> ChannelPage:
    """Every post of a channel preview page; a page that is not one raises ParseError."""
    import lxml.html

    try:
        root: Any = lxml.html.document_fromstring(body)
    except (ValueError, lxml.html.etree.ParserError) as exc:
        raise ParseError(url, f"not a Telegram channel page ({str(exc)[:200]})") from None
    messages = root.xpath('//div[@data-post and contains(concat(" ", @class, " "), " tgme_widget_message ")]')
    title_nodes = root.xpath('//div[contains(@class, "tgme_channel_info_header_title")]')
    title = " ".join(title_nodes[0].text_content().split())[:300] if title_nodes else ""
    if not messages and not title_nodes:
        raise ParseError(url, "not a Telegram channel page: no posts and no channel header")
    posts: dict[int, Post] = {}
    for message in messages:
        post = _post(message, url)
        if post is not None:
            posts.setdefault(post.id, post)
    return ChannelPage(repair_text(title), tuple(sorted(posts.values(), key=lambda p: p.id)))


def _post(message: Any, url: str) -> Post | None:
    found = _POST.match(str(message.get("data-post") or "").strip())
    if found is None:
        return None
    name, number = found.group(1), int(found.group(2))
    link = f"https://t.me/{name}/{number}"
    when: datetime | None = None
    for anchor in message.xpath('.//a[contains(@class, "tgme_widget_message_date")]'):
        href = urljoin(url, str(anchor.get("href") or ""))
        if urlsplit(href).scheme in ("http", "https") and href.rstrip("/").endswith(f"/{name}/{number}"):
            link = href
        stamp = anchor.xpath(".//time/@datetime")
        when = _when(str(stamp[0])) if stamp else None
        break
    texts = message.xpath('.//div[contains(concat(" ", @class, " "), " tgme_widget_message_text ")]')
    text, links = ("", ()) if not texts else _text_and_links(texts[0], url)
    return Post(number, link, text, when, links)


def _text_and_links(node: Any, url: str) -> tuple[str, tuple[str, ...]]:
    for hidden in node.xpath(".//script | .//style | .//noscript | .//template | .//iframe | .//object"):
        hidden.drop_tree()  # code and embedded documents are not the post's text (their tails are)
    for br in node.iter("br"):
        br.tail = "\n" + (br.tail or "")
    links: list[str] = []
    for anchor in node.iter("a"):
        href = urljoin(url, str(anchor.get("href") or "").strip())
        parts = urlsplit(href)
        if parts.scheme in ("http", "https") and href not in links and len(links) < 50:
            links.append(href[:2000])
    lines = (" ".join(line.split()) for line in node.text_content().splitlines())
    return repair_text("\n".join(line for line in lines if line)), tuple(links)


def _when(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def outbound(links: tuple[str, ...]) -> tuple[str, ...]:
    """The links of a post that lead off Telegram."""
    return tuple(link for link in links if (urlsplit(link).hostname or "").lower() not in TELEGRAM_HOSTS)


def post_entries(page: ChannelPage, *, after: int | None, follow_links: bool, language: str | None) -> list[FeedEntry]:
    """The posts newer than `after` (every post when None) as items, newest first: the post's own
    text is the item, under its permanent link; with `follow_links`, the first article a post
    links to is an item of its own, read as a page."""
    out: list[FeedEntry] = []
    for post in sorted(page.posts, key=lambda p: p.id, reverse=True):
        if after is not None and post.id <= after:
            continue
        first_line = post.text.split("\n", 1)[0]
        title = first_line if len(first_line) <= TITLE_CHARS else first_line[: TITLE_CHARS - 1].rstrip() + "…"
        out.append(
            FeedEntry(
                guid=post.link,
                link=post.link,
                title=title,
                summary=post.text,
                published_at=post.published_at,
                updated_marker=None,
                author=page.title or None,
                language=language,
                read_page=False,
                links=post.links,
            )
        )
        articles = outbound(post.links)
        if follow_links and articles:
            out.append(FeedEntry(None, articles[0], "", "", post.published_at, None, language=language))
    return out
