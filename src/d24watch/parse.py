"""Feed and listing-page bytes to plain values. Pure; the only feedparser import. Runs in worker
processes, so a pathological document costs a worker's memory, never the daemon's; feedparser and
lxml are imported where they are used, so the daemon's own process never loads them."""

from __future__ import annotations

import calendar
import html
import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from d24watch.errors import ParseError
from d24watch.models import FeedEntry, ParsedFeed
from d24watch.text import repair_text

_ENTITY_DECL = re.compile(rb"<\s*!\s*ENTITY", re.IGNORECASE)
_ENTITY_DECL_UTF16 = ("<!ENTITY".encode("utf-16-le"), "<!ENTITY".encode("utf-16-be"))
_TAGS = re.compile(r"<[^>]+>")
_INLINE_HTML = re.compile(
    r"</?(?:a|abbr|b|big|br|cite|code|em|font|i|mark|p|q|s|small|span|strong|sub|sup|u)(?:\s[^>]*)?/?>", re.IGNORECASE
)
NOT_ARTICLE = re.compile(
    r"/(tag|tags|category|categories|author|authors|topic|topics|page|search|login|subscribe|about|contact|"
    r"feed|rss|video|videos|gallery|photos)(/|$)",
    re.IGNORECASE,
)


def _feedparser() -> Any:
    import feedparser

    feedparser.SANITIZE_HTML = True
    feedparser.RESOLVE_RELATIVE_URIS = True
    return feedparser


def _lxml_html() -> Any:
    import lxml.html

    return lxml.html


def declares_entities(body: bytes) -> bool:
    """True when the document declares XML entities: never expanded, so refused outright."""
    return bool(_ENTITY_DECL.search(body)) or any(p in body for p in _ENTITY_DECL_UTF16)


def html_to_text(fragment: str) -> str:
    """Plain text of an HTML fragment, paragraphs on their own lines."""
    if not fragment or "<" not in fragment:
        return html.unescape(fragment or "").strip()
    try:
        html_ = _lxml_html()
        root = html_.fragment_fromstring(fragment, create_parent="div")
    except (ValueError, html_.etree.ParserError):
        return html.unescape(_TAGS.sub(" ", fragment)).strip()
    for br in root.iter("br"):
        br.tail = "\n" + (br.tail or "")
    for block in root.iter("p", "div", "li", "h1", "h2", "h3", "h4", "blockquote"):
        block.tail = "\n" + (block.tail or "")
    text = root.text_content()
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def plain_title(text: str) -> str:
    """A title that is text already (the XML parser unescaped it once): only its white space is
    tidied, so `&amp;` and `<!channel>` written by the publisher stay as written."""
    return " ".join(text.split())


def entry_title(entry: Any, *, atom: bool) -> str:
    """An entry's title as its publisher wrote it: read as HTML only when it is markup (Atom's
    declared `type="html"` or `"xhtml"`; in RSS, which has no type, a title holding HTML elements),
    otherwise kept as text. feedparser's own guess for RSS takes any `&amp;` for HTML."""
    title = entry.get("title", "") or ""
    if atom:
        detail = entry.get("title_detail") or {}
        is_html = str(detail.get("type", "text/plain")).endswith(("html", "xhtml+xml"))
    else:
        is_html = bool(_INLINE_HTML.search(title))
    return html_to_text(title) if is_html else plain_title(title)


def _when(entry: Any, *keys: str) -> datetime | None:
    for key in keys:
        value = dict.get(entry, key)
        if value:
            try:
                return datetime.fromtimestamp(calendar.timegm(value), UTC)
            except (OverflowError, ValueError, TypeError):
                continue
    return None


def _entry_text(entry: Any) -> str:
    contents = entry.get("content") or []
    best = max((c.get("value", "") for c in contents), key=len, default="")
    summary = entry.get("summary", "") or ""
    return html_to_text(best if len(best) >= len(summary) else summary)


def looks_like_feed(body: bytes) -> bool:
    head = body[:2048].lstrip().lower()
    return head.startswith((b"<?xml", b"<rss", b"<feed", b"<rdf")) or (
        head.startswith(b"{") and b"jsonfeed.org" in body[:4096]
    )


def parse_feed(body: bytes, url: str, content_type: str = "") -> ParsedFeed:
    """Parse an RSS 0.9x-2.0, RSS 1.0, Atom or JSON Feed document."""
    if not body.strip():
        raise ParseError(url, "empty body")
    if body.lstrip()[:1] == b"{":
        return parse_json_feed(body, url)
    if declares_entities(body):
        raise ParseError(url, "the document declares XML entities, which are never expanded")
    headers = {"content-location": url, "content-type": content_type or "application/xml"}
    feedparser = _feedparser()
    parsed = feedparser.parse(body, response_headers=headers, sanitize_html=True)
    entries = parsed.get("entries") or []
    if not entries and not parsed.get("version"):
        lowered = body[:1024].lower()
        if b"<html" in lowered or b"<!doctype html" in lowered:
            raise ParseError(url, "not a feed: the answer is an HTML page")
        problem = parsed.get("bozo_exception")
        raise ParseError(url, f"not a feed ({_first_line(problem) if problem else 'no feed elements found'})")
    usable = [e for e in entries if e.get("link") or e.get("id") or e.get("title") or e.get("summary")]
    benign = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)
    if not usable and parsed.get("bozo") and not isinstance(parsed.get("bozo_exception"), benign):
        # Malformed XML that yielded nothing usable; well-formed feeds with no items are fine.
        raise ParseError(url, f"not a feed: malformed XML ({_first_line(parsed.get('bozo_exception'))})")
    out: list[FeedEntry] = []
    for entry in usable:
        link = entry.get("link") or None
        if link:
            link = urljoin(url, link.strip())
            if urlsplit(link).scheme not in ("http", "https"):
                link = None
        title = entry_title(entry, atom=str(parsed.get("version", "")).startswith("atom"))
        guid = entry.get("id") or None
        # dict.get: feedparser's own get() maps a missing `updated` to `published`, with a warning.
        updated = dict.get(entry, "updated") or None
        out.append(
            FeedEntry(
                guid=str(guid)[:2000] if guid else None,
                link=link,
                title=repair_text(title)[:1000],
                summary=repair_text(_entry_text(entry)),
                published_at=_when(entry, "published_parsed", "updated_parsed", "created_parsed"),
                updated_marker=str(updated)[:200] if updated else None,
                author=(entry.get("author") or None),
                publisher=_publisher(entry),
            )
        )
    feed = parsed.get("feed", {})
    ttl = str(feed.get("ttl") or "").strip()
    return ParsedFeed(
        title=html_to_text(feed.get("title", "") or ""),
        entries=tuple(out),
        ttl_s=int(ttl) * 60 if ttl.isdigit() and int(ttl) < 10**6 else None,
        update_period_s=update_period(feed.get("sy_updateperiod"), feed.get("sy_updatefrequency")),
    )


_PERIODS = {"hourly": 3600, "daily": 86400, "weekly": 7 * 86400, "monthly": 30 * 86400, "yearly": 365 * 86400}


def update_period(period: object, frequency: object) -> int | None:
    """Seconds between updates by the RSS syndication module: `sy:updatePeriod` (hourly by
    default) divided by `sy:updateFrequency` (1 by default); None when the feed gives neither."""
    if not period and not frequency:
        return None
    seconds = _PERIODS.get(str(period or "hourly").strip().lower())
    count = str(frequency or "1").strip()
    if seconds is None or not count.isdigit() or not 0 < int(count) < 10**6:
        return None
    return seconds // int(count)


def _publisher(entry: Any) -> str | None:
    """The outlet an RSS `<source url="…">Name</source>` names (an aggregator's items carry it)."""
    source = dict.get(entry, "source")
    if not isinstance(source, dict):
        return None
    name = " ".join(str(source.get("title") or "").split())[:200]
    return name or None


def _first_line(exc: object) -> str:
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__


def article_links(body: bytes, url: str, limit: int = 300) -> list[tuple[str, str]]:
    """(link, anchor text) of article-like links on a listing page: same site, a path that reads
    like an article (a long slug, a numeric id or .html), not a tag, author or section page."""
    try:
        html_ = _lxml_html()
        root = html_.document_fromstring(body)
    except (ValueError, html_.etree.ParserError) as exc:
        raise ParseError(url, f"not an HTML page ({_first_line(exc)})") from None
    site = _site(urlsplit(url).hostname or "")
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for anchor in root.iter("a"):
        href = (anchor.get("href") or "").strip()
        if not href or href.startswith(("#", "javascript:", "mailto:", "tel:")):
            continue
        link = urljoin(url, href).split("#", 1)[0]
        parts = urlsplit(link)
        if parts.scheme not in ("http", "https") or _site(parts.hostname or "") != site:
            continue
        if link in seen or link.rstrip("/") == url.rstrip("/") or not _article_like(parts.path):
            continue
        seen.add(link)
        out.append((link, " ".join(anchor.text_content().split())[:500]))
        if len(out) >= limit:
            break
    return out


def _site(host: str) -> str:
    host = host.lower()
    return host[4:] if host.startswith("www.") else host


def _article_like(path: str) -> bool:
    if NOT_ARTICLE.search(path):
        return False
    last = path.rstrip("/").rsplit("/", 1)[-1]
    if last.endswith((".html", ".htm", ".php", ".aspx", ".vnp", ".epi", ".ldo")):
        return len(last) > 8
    digits = sum(ch.isdigit() for ch in last)
    return (last.count("-") >= 3 and len(last) >= 20) or digits >= 5


def parse_json_feed(body: bytes, url: str) -> ParsedFeed:
    """JSON Feed 1.0 and 1.1 (https://jsonfeed.org), which feedparser does not read."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise ParseError(url, f"not a feed: invalid JSON ({_first_line(exc)})") from None
    if not isinstance(data, dict) or "jsonfeed.org" not in str(data.get("version", "")):
        raise ParseError(url, "not a feed: JSON without a JSON Feed version")
    items = data.get("items")
    if not isinstance(items, list):
        raise ParseError(url, "not a feed: JSON Feed without items")
    out = []
    for item in items:
        if not isinstance(item, dict):
            continue
        link = item.get("url") or item.get("external_url")
        link = urljoin(url, link) if isinstance(link, str) else None
        if link and urlsplit(link).scheme not in ("http", "https"):
            link = None
        content = item.get("content_html") or item.get("content_text") or item.get("summary") or ""
        authors = item.get("authors") or ([item["author"]] if isinstance(item.get("author"), dict) else [])
        author = next((a.get("name") for a in authors if isinstance(a, dict) and a.get("name")), None)
        guid = item.get("id")
        out.append(
            FeedEntry(
                guid=str(guid)[:2000] if guid is not None else None,
                link=link,
                title=repair_text(plain_title(str(item.get("title") or "")))[:1000],  # plain text by the spec
                summary=repair_text(html_to_text(str(content))),
                published_at=_iso_date(item.get("date_published") or item.get("date_modified")),
                updated_marker=str(item["date_modified"])[:200] if item.get("date_modified") else None,
                author=str(author) if author else None,
            )
        )
    return ParsedFeed(title=str(data.get("title") or ""), entries=tuple(out))


def _iso_date(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
