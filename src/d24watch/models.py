"""Frozen values that cross stage boundaries: fetch results, parsed feeds, extracted articles,
hits, what the store knows of an article, event references. Nothing here does I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal


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

    @property
    def charset(self) -> str | None:
        """The charset the Content-Type header declares, if any."""
        for part in self.headers.get("content-type", "").split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key.lower() == "charset" and value:
                return value.strip("\"' ")
        return None


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
    matched_entities: tuple[str, ...] = field(default_factory=tuple)  # sorted, each once
    articles_per_entity: tuple[tuple[str, int], ...] = ()  # (entity, articles newly matched)


@dataclass(frozen=True, slots=True)
class KnownArticle:
    """What dedupe and revision decisions need of a stored article."""

    id: int
    canonical_url: str
    text_hash: str
    page_pending: bool
    updated_marker: str | None
    revision: int
    duplicate_of: int | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Where one archived response lies: a WARC file, the record's offset and length."""

    warc_file: str  # the file's name, relative to the archive folder
    offset: int
    length: int
    sha256: str  # of the body as received (decompressed)


EventKind = Literal["mention", "changed", "removed"]


@dataclass(frozen=True, slots=True)
class EventRef:
    """What a delivery is about: a new mention, or an article event (`changed`, `removed`) by its id
    in the article's events."""

    kind: EventKind
    event_id: int | None = None

    @property
    def key(self) -> str:
        """`mention`, or `changed:17`: how the event is written in delivery ids and the outbox."""
        return self.kind if self.event_id is None else f"{self.kind}:{self.event_id}"

    @classmethod
    def from_key(cls, key: str) -> EventRef:
        name, _, ref = key.partition(":")
        kind = _EVENT_KINDS.get(name)
        if kind is None:
            raise ValueError(f"unknown event {key!r}")
        return cls(kind, int(ref) if ref.isdigit() else None)


_EVENT_KINDS: dict[str, EventKind] = {"mention": "mention", "changed": "changed", "removed": "removed"}


MENTION = EventRef("mention")
