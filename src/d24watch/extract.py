"""Article page bytes to text and metadata. Pure and the only trafilatura import; it never fetches.
Runs in worker processes, together with the text work that follows it (hashes, signatures).
trafilatura is imported where it is used, so the daemon's own process never loads it."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from d24watch.models import ArticleText
from d24watch.prepare import Prepared, prepare
from d24watch.text import nfc, repair_text

_CANONICAL = re.compile(
    rb"""<link\b[^>]*?\brel\s*=\s*["']?canonical["']?[^>]*>""",
    re.IGNORECASE,
)
_HREF = re.compile(rb"""\bhref\s*=\s*["']?([^"'\s>]+)""", re.IGNORECASE)
_LANG = re.compile(rb"""<html\b[^>]*?\blang\s*=\s*["']?([A-Za-z]{2,3})""", re.IGNORECASE)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.IGNORECASE)


def decode_html(body: bytes, charset: str | None = None) -> str:
    """The page as text: the HTTP charset, else the page's own meta charset, else detection."""
    for candidate in (charset, _meta_charset(body)):
        if candidate:
            try:
                return body.decode(candidate)
            except (LookupError, UnicodeDecodeError):
                continue
    from trafilatura.utils import decode_file

    decoded: str = decode_file(body)
    return decoded


def _meta_charset(body: bytes) -> str | None:
    match = _META_CHARSET.search(body[:4096])
    return match.group(1).decode("ascii", "replace") if match else None


def extract_text(page: str | bytes) -> str:
    """Main text only, with the settings d24watch uses (reader comments left out)."""
    import trafilatura

    text = trafilatura.extract(page, include_comments=False, include_tables=True, deduplicate=False)
    return nfc(text or "")


def extract_article(body: bytes, charset: str | None = None, *, metadata: bool = True) -> ArticleText:
    """The page's main text; with `metadata`, also its title, author and date as trafilatura finds
    them, which triples the cost (date search): asked for only when the feed did not give them."""
    import trafilatura

    html = decode_html(body, charset)
    doc = trafilatura.bare_extraction(
        html,
        include_comments=False,
        include_tables=True,
        with_metadata=metadata,
    )
    canonical = _CANONICAL.search(body[:200_000])
    href = _HREF.search(canonical.group(0)) if canonical else None
    lang = _LANG.search(body[:4096])
    if doc is None:
        return ArticleText("", None, None, None, lang.group(1).decode().lower() if lang else None, None)
    text = repair_text(nfc(getattr(doc, "text", None) or ""))
    title = getattr(doc, "title", None)
    return ArticleText(
        text=text,
        title=repair_text(nfc(str(title))) if title else None,
        author=getattr(doc, "author", None) or None,
        published_at=_date(getattr(doc, "date", None)),
        language=(lang.group(1).decode().lower() if lang else None) or (getattr(doc, "language", None) or None),
        canonical_url=href.group(1).decode("utf-8", "replace") if href else None,
    )


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    except ValueError:
        return None


__all__ = ["Prepared", "extract_and_prepare", "extract_article", "extract_text", "prepare"]


def extract_and_prepare(body: bytes, charset: str | None, metadata: bool = True) -> Prepared:
    return prepare(extract_article(body, charset, metadata=metadata))
