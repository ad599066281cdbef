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
    request: tuple[tuple[str, str], ...] = ()  # the request line's method and the headers sent
    history: tuple[FetchResult, ...] = ()  # the redirects answered on the way, first first

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
    language: str | None = None  # what the listing says of the item (a news sitemap does)
    via: str | None = None  # the aggregator's link the publisher's `link` was resolved from
    publisher: str | None = None  # the outlet an aggregator names for the item
    read_page: bool = True  # False: the listing's own text is the whole item (a Telegram post)

    @property
    def unresolved(self) -> bool:
        """An aggregator link that could not be turned into the publisher's yet."""
        return self.via is not None and self.via == self.link

    links: tuple[str, ...] = ()  # outbound links the item's text carries (a Telegram post's)


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    title: str
    entries: tuple[FeedEntry, ...]
    ttl_s: int | None = None  # RSS <ttl>
    update_period_s: int | None = None  # sy:updatePeriod / sy:updateFrequency


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
    resolved: int = 0  # aggregator links resolved to the publisher's
    unresolved: int = 0  # aggregator links left as they are, to try again next poll
    kind: str = "feed"  # the source's kind
    found: int = 0  # items the source listed this poll (new or not)


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
    length: int  # the response record and its request record, one gzip member each
    sha256: str  # of the body as received (decompressed)
    record_id: str = ""  # the response record's WARC-Record-ID
    record_sha256: str = ""  # of the record bytes as stored (offset, length): what a timestamp covers


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
