"""Sitemaps to plain values (the sitemaps.org protocol, with Google's News extension): a sitemap
index lists child sitemaps, a urlset lists pages, and a news sitemap gives each page's title,
publication date and language. Pure; runs in worker processes. The XML is streamed with lxml and
each element dropped once read, so a sitemap of 50,000 URLs costs little more than its answer;
documents that declare entities are refused, as feeds are, and nothing is ever fetched by the
parser (no DTD, no network, no entity expansion)."""

from __future__ import annotations

import functools
import io
import re
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

from d24watch.errors import ParseError
from d24watch.models import FeedEntry
from d24watch.parse import NOT_ARTICLE, declares_entities
from d24watch.text import repair_text

MAX_SITEMAPS_IN_ROBOTS = 20
# Child sitemaps that list a site's sections rather than its articles (WordPress and Yoast name
# them so: category-sitemap.xml, post_tag-sitemap.xml, author-sitemap.xml, page-sitemap.xml).
_SECTION_SITEMAP = re.compile(
    r"(category|categories|tag|tags|topic|topics|author|authors|page|video|image)s?[-_.]", re.I
)


def section_sitemap(url: str) -> bool:
    """Whether a child sitemap lists sections, tags, authors or media rather than articles."""
    name = urlsplit(url).path.rsplit("/", 1)[-1]
    return bool(_SECTION_SITEMAP.match(name)) or name.split("-", 1)[0].lower() in {"post_tag", "product"}


GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True, slots=True)
class Child:
    """A sitemap listed by a sitemap index."""

    url: str
    lastmod: str | None


@dataclass(frozen=True, slots=True)
class Sitemap:
    kind: Literal["index", "urlset"]
    children: tuple[Child, ...] = ()  # of an index, newest lastmod first
    entries: tuple[FeedEntry, ...] = ()  # of a urlset: newer than `since`, newest first, at most `limit`


def gunzip(body: bytes, url: str, cap: int) -> bytes:
    """A gzip-compressed sitemap (`sitemap.xml.gz`) decompressed, never beyond `cap` bytes."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, cap + 1)
    except zlib.error as exc:
        raise ParseError(url, f"not a sitemap: the gzip data is damaged ({exc})") from None
    if len(out) > cap:
        raise ParseError(url, f"the sitemap is over the {cap:,}-byte cap once decompressed")
    return out


def robots_sitemaps(body: bytes, url: str) -> list[str]:
    """The `Sitemap:` lines of a robots.txt, as absolute http(s) URLs, each once, in order."""
    out: list[str] = []
    for raw in body.decode("utf-8", "replace").splitlines():
        field, _, value = raw.partition(":")
        if field.strip().lower() != "sitemap":
            continue
        link = urljoin(url, value.split("#", 1)[0].strip())
        if urlsplit(link).scheme in ("http", "https") and link not in out:
            out.append(link)
        if len(out) >= MAX_SITEMAPS_IN_ROBOTS:
            break
    return out


NEWS_NS = "http://www.google.com/schemas/sitemap-news/0.9"
_NEWS_FIELDS = frozenset({"title", "publication_date", "language", "name"})
_OWN_FIELDS = frozenset({"loc", "lastmod"})


@functools.lru_cache(maxsize=256)
def _local(tag: object) -> tuple[str, str]:
    """(namespace, local name) of an element's tag; comments and the like give ("", "")."""
    name = tag if isinstance(tag, str) else ""
    if name.startswith("{"):
        space, _, local = name[1:].partition("}")
        return space, local
    return "", name


def _field(space: str, name: str) -> str | None:
    """The field an element fills: the sitemap's own `loc` and `lastmod` (not an image's or a
    video's), and the news extension's title, date, language and publication name."""
    if name in _OWN_FIELDS and (not space or space.startswith("http://www.sitemaps.org/")):
        return name
    if name in _NEWS_FIELDS and space == NEWS_NS:
        return name
    return None


def when(value: str | None) -> datetime | None:
    """A W3C datetime (`2024-05-06`, `2024-05-06T08:00:00+07:00`, with or without seconds)."""
    if not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_sitemap(
    body: bytes, url: str, since: datetime | None = None, limit: int = 300, cap: int = 50_000_000
) -> Sitemap:
    """Read a sitemap or a sitemap index (gzip or not). Of a urlset, only the pages whose date
    (the news publication date, else `lastmod`) is after `since` are kept, and pages without
    any date; newest first, at most `limit`."""
    if body[:2] == GZIP_MAGIC:
        body = gunzip(body, url, cap)
    if not body.strip():
        raise ParseError(url, "empty body")
    if declares_entities(body):
        raise ParseError(url, "the document declares XML entities, which are never expanded")
    from lxml import etree

    kind: Literal["index", "urlset"] | None = None
    children: list[Child] = []
    kept: list[tuple[datetime | None, int, dict[str, str]]] = []
    fields: dict[str, str] = {}
    count = 0
    parser: Any = etree.iterparse(
        io.BytesIO(body),
        events=("end",),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        for _, element in parser:
            if kind is None:
                root = _local(element.getroottree().getroot().tag)[1]
                if root not in ("sitemapindex", "urlset"):
                    raise ParseError(url, f"not a sitemap: the document is <{root}>")
                kind = "index" if root == "sitemapindex" else "urlset"
            space, name = _local(element.tag)
            field = _field(space, name)
            if field is not None:
                fields[field] = " ".join((element.text or "").split())[:2000]
                continue
            if name == "sitemap" and kind == "index":
                link = _absolute(url, fields.get("loc"))
                if link and not section_sitemap(link):
                    children.append(Child(link, fields.get("lastmod") or None))
            elif name == "url" and kind == "urlset":
                count += 1
                dated = when(fields.get("publication_date")) or when(fields.get("lastmod"))
                if _listable(url, fields.get("loc")) and (since is None or dated is None or dated > since):
                    kept.append((dated, count, fields))
                    if len(kept) > 4 * limit:
                        kept = _newest(kept, limit)
            else:
                continue
            fields = {}
            # Drop what was read, and the siblings before it, so memory stays flat.
            element.clear()
            parent = element.getparent()
            while parent is not None and element.getprevious() is not None:
                del parent[0]
    except etree.XMLSyntaxError as exc:
        if kind is None or not (count or children):
            raise ParseError(url, f"not a sitemap: malformed XML ({str(exc).splitlines()[0][:200]})") from None
        # A truncated sitemap: what was read before the damage stands, as with feeds.
    if kind is None:
        raise ParseError(url, "not a sitemap: no sitemap elements found")
    if kind == "index":
        children.sort(key=lambda c: when(c.lastmod) or datetime.min.replace(tzinfo=UTC), reverse=True)
        return Sitemap("index", children=tuple(children))
    entries = (_entry(url, found) for _, _, found in _newest(kept, limit))
    return Sitemap("urlset", entries=tuple(e for e in entries if e is not None))


def _newest(
    kept: list[tuple[datetime | None, int, dict[str, str]]], limit: int
) -> list[tuple[datetime | None, int, dict[str, str]]]:
    """Dated pages newest first, then undated ones in the sitemap's order."""
    oldest = datetime.min.replace(tzinfo=UTC)
    return sorted(kept, key=lambda k: (k[0] is None, -(k[0] or oldest).timestamp(), k[1]))[:limit]


def _absolute(base: str, loc: str | None) -> str | None:
    if not loc:
        return None
    link = urljoin(base, loc)
    return link if urlsplit(link).scheme in ("http", "https") else None


_ABSOLUTE = re.compile(r"https?://[^/?#\s]+(/[^?#]*)?", re.IGNORECASE)


def _listable(base: str, loc: str | None) -> bool:
    """Whether a sitemap's page may be an article: not the home page, a section, a tag or an author page."""
    if not loc:
        return False
    found = _ABSOLUTE.match(loc)  # the usual case, read without urljoin's cost
    if found is not None:
        path = found.group(1) or ""
    else:
        link = _absolute(base, loc)
        if link is None:
            return False
        path = urlsplit(link).path
    return path not in ("", "/") and not NOT_ARTICLE.search(path)


def _entry(base: str, fields: dict[str, str]) -> FeedEntry | None:
    link = _absolute(base, fields.get("loc"))
    if link is None:
        return None
    lastmod = fields.get("lastmod") or None
    return FeedEntry(
        guid=None,
        link=link,
        title=repair_text(fields.get("title", ""))[:1000],
        summary="",
        published_at=when(fields.get("publication_date")),
        updated_marker=lastmod,
        language=(fields.get("language") or None),
    )
