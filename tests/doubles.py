"""Loopback doubles of services out of reach here, built from their documented or observed formats:

- Google News RSS search feeds, their `rss/articles/ID` interstitial pages and the `batchexecute`
  decoding endpoint, as the maintained decoders (googlenewsdecoder and its ports) describe them:
  the ID is URL-safe base64 of a protobuf message (08 13 22, a length, then the publisher's URL in
  old links or an `AU_yqL…` token in new ones); the page carries `data-n-a-id`, `data-n-a-ts` and
  `data-n-a-sg`; the endpoint takes `f.req` with the `garturlreq` call and answers `)]}'`, a blank
  line and `[["wrb.fr","Fbv4je","[\\"garturlres\\",URL,1]",…]]`.
- Telegram's public channel preview (`t.me/s/NAME`): `div.tgme_widget_message[data-post]`, the text
  in `.tgme_widget_message_text`, the time in `a.tgme_widget_message_date time[datetime]`, older
  posts at `?before=ID`, about twenty posts a page.
- Sitemaps by sitemaps.org and Google's news sitemap extension."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Sequence
from datetime import datetime
from html import escape
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs

from tests.server import LocalServer, Served

# -- Google News ----------------------------------------------------------------------------------


def _varint(n: int) -> bytes:
    out = b""
    while True:
        byte, n = n & 0x7F, n >> 7
        out += bytes([byte | (0x80 if n else 0)])
        if not n:
            return out


def old_id(url: str) -> str:
    """An article ID of a link made before mid-2024: the publisher's URL in plain."""
    raw = url.encode()
    return base64.urlsafe_b64encode(b"\x08\x13\x22" + _varint(len(raw)) + raw + b"\xd2\x01\x00").decode().rstrip("=")


def new_id(token: str) -> str:
    """An article ID of a newer link: an opaque token that only the endpoint turns into a URL."""
    raw = ("AU_yqL" + token).encode()
    return base64.urlsafe_b64encode(b"\x08\x13\x22" + _varint(len(raw)) + raw).decode().rstrip("=")


class GoogleNewsDouble:
    """Serves interstitial pages and the decoding endpoint on `server`; `known` maps an ID to the
    publisher's URL the endpoint answers (IDs not in it get an answer without a URL)."""

    SIGNATURE = "AZ5r3eTestSignature"
    TIMESTAMP = "1733000000"

    def __init__(self, server: LocalServer) -> None:
        self.server = server
        self.known: dict[str, str] = {}
        self.asked: list[str] = []  # IDs the endpoint was asked for
        server.routes["/_/DotsSplashUi/data/batchexecute"] = self._batch

    def link(self, identifier: str) -> str:
        return self.server.url(f"/rss/articles/{identifier}?oc=5")

    def interstitial(self, identifier: str, *, params: bool = True) -> None:
        attributes = (
            f'data-n-a-id="{identifier}" data-n-a-ts="{self.TIMESTAMP}" data-n-a-sg="{self.SIGNATURE}"'
            if params
            else ""
        )
        page = (
            '<!doctype html><html><head><title>Google News</title></head><body><c-wiz jsrenderer="x">'
            f'<div jscontroller="aLI87" {attributes}></div></c-wiz>'
            "<script>/* the redirect happens here, by script */</script></body></html>"
        )
        self.server.routes[f"/rss/articles/{identifier}?oc=5"] = Served(page.encode())

    def _batch(self, h: BaseHTTPRequestHandler) -> None:
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0)).decode()
        request = json.loads(parse_qs(body)["f.req"][0])
        call = request[0][0]
        inner = json.loads(call[1])
        identifier, timestamp, signature = inner[2], str(inner[3]), inner[4]
        self.asked.append(identifier)
        valid = call[0] == "Fbv4je" and inner[0] == "garturlreq"
        url = (
            self.known.get(identifier) if valid and (timestamp, signature) == (self.TIMESTAMP, self.SIGNATURE) else None
        )
        answer = json.dumps(["garturlres", url, 1]) if url else json.dumps(["garturlres", None, 3])
        payload = ")]}'\n\n" + json.dumps([["wrb.fr", "Fbv4je", answer, None, None, None, "generic"], ["di", 42]])
        data = payload.encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json; charset=utf-8")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)


def google_news_feed(items: Sequence[tuple[str, str, str, str]]) -> str:
    """An RSS search feed as Google News writes it: (title, link, publisher, publisher site) per item;
    the title ends with " - Publisher", the description is a link list, `<source url>` names the site."""
    body = "".join(
        f"<item><title>{escape(title)} - {escape(publisher)}</title><link>{escape(link)}</link>"
        f'<guid isPermaLink="false">{escape(link.rsplit("/", 1)[-1].split("?")[0])}</guid>'
        "<pubDate>Mon, 02 Dec 2024 08:00:00 GMT</pubDate>"
        f'<description>&lt;a href="{escape(link)}"&gt;{escape(title)}&lt;/a&gt;&amp;nbsp;&amp;nbsp;'
        f'&lt;font color="#6f6f6f"&gt;{escape(publisher)}&lt;/font&gt;</description>'
        f'<source url="{escape(site)}">{escape(publisher)}</source></item>'
        for title, link, publisher, site in items
    )
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><rss version="2.0" '
        'xmlns:media="http://search.yahoo.com/mrss/"><channel><generator>NFE/5.0</generator>'
        '<title>"Directive 24" Vietnam - Google News</title><link>https://news.google.com/</link>'
        f"<language>en-US</language>{body}</channel></rss>"
    )


# -- Telegram -------------------------------------------------------------------------------------


def telegram_page(channel: str, posts: Sequence[tuple[int, str, datetime]], *, title: str = "Test channel") -> str:
    """A channel preview page listing `posts` (id, text HTML, time), oldest first as Telegram does."""
    messages = "".join(
        '<div class="tgme_widget_message_wrap js-widget_message_wrap">'
        f'<div class="tgme_widget_message text_not_supported_wrap js-widget_message" data-post="{channel}/{number}">'
        '<div class="tgme_widget_message_bubble">'
        f'<div class="tgme_widget_message_text js-message_text" dir="auto">{text}</div>'
        '<div class="tgme_widget_message_footer compact js-message_footer"><div class="tgme_widget_message_info">'
        '<span class="tgme_widget_message_views">1.2K</span><span class="tgme_widget_message_meta">'
        f'<a class="tgme_widget_message_date" href="https://t.me/{channel}/{number}">'
        f'<time datetime="{when.isoformat()}" class="time">{when:%H:%M}</time></a></span></div></div>'
        "</div></div></div>"
        for number, text, when in posts
    )
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{escape(title)} – Telegram</title></head><body>'
        '<header class="tgme_header"><div class="tgme_channel_info_header">'
        f'<div class="tgme_channel_info_header_title"><span dir="auto">{escape(title)}</span></div></div></header>'
        f'<main class="tgme_main"><section class="tgme_channel_history js-message_history">{messages}</section></main>'
        "</body></html>"
    )


# -- sitemaps -------------------------------------------------------------------------------------


def news_sitemap(pages: Sequence[tuple[str, str, datetime]], language: str = "vi") -> str:
    """A Google News sitemap: (URL, title, publication time) per page."""
    urls = "".join(
        f"<url><loc>{escape(url)}</loc><news:news><news:publication><news:name>Báo Thử</news:name>"
        f"<news:language>{language}</news:language></news:publication>"
        f"<news:publication_date>{when.isoformat()}</news:publication_date>"
        f"<news:title>{escape(title)}</news:title></news:news>"
        f"<image:image><image:loc>{escape(url)}.jpg</image:loc><image:title>photo</image:title></image:image></url>"
        for url, title, when in pages
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9" '
        f'xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">{urls}</urlset>'
    )


def plain_sitemap(pages: Sequence[tuple[str, str]]) -> str:
    """A sitemap without the news extension: (URL, lastmod) per page."""
    urls = "".join(f"<url><loc>{escape(url)}</loc><lastmod>{lastmod}</lastmod></url>" for url, lastmod in pages)
    return f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'


def sitemap_index(children: Sequence[tuple[str, str]]) -> str:
    entries = "".join(
        f"<sitemap><loc>{escape(url)}</loc><lastmod>{lastmod}</lastmod></sitemap>" for url, lastmod in children
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</sitemapindex>'
    )


def gzipped(text: str) -> bytes:
    return gzip.compress(text.encode())
