"""Frozen values that cross stage boundaries: fetch results, parsed feeds, extracted articles,
hits. Nothing here does I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class FetchResult:
    url: str  # the URL finally answered, after redirects
    status: int
    headers: dict[str, str]
    body: bytes
    not_modified: bool = False

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")

    @property
    def last_modified(self) -> str | None:
        return self.headers.get("last-modified")

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


@dataclass(frozen=True, slots=True)
class FeedEntry:
    guid: str | None
    link: str | None
    title: str
    summary: str  # the feed's own text for the item (content or description), as plain text
    published_at: datetime | None
    updated_marker: str | None  # the entry's own "updated" value, to notice edits
    author: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    title: str
    entries: tuple[FeedEntry, ...]
    ttl_s: int | None = None


@dataclass(frozen=True, slots=True)
class ArticleText:
    text: str
    title: str | None
    author: str | None
    published_at: datetime | None
    language: str | None
    canonical_url: str | None


@dataclass(frozen=True, slots=True)
class Hit:
    entity_id: str
    text: str
    start: int
    end: int
    snippet: str
    field: str = "text"  # "text": offsets into the article text; "title": into its title


@dataclass(frozen=True, slots=True)
class EntityMatch:
    entity_id: str
    hits: tuple[Hit, ...]


@dataclass(frozen=True, slots=True)
class SourceReport:
    """What one source's update did, for the one-line summary and the metrics."""

    name: str
    ok: bool
    new: int = 0
    duplicates: int = 0
    revisions: int = 0
    hits: int = 0
    not_modified: bool = False
    error: str | None = None
    page_errors: int = 0
    matched_entities: tuple[str, ...] = field(default_factory=tuple)
