"""Typed rows: what the store hands out and takes in, one frozen class per table or query. Times
are the ISO 8601 UTC strings the database holds (`2024-05-06T08:00:00Z`), as payloads show them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from d24watch.models import EventRef


def _pick(cls: type, row: dict[str, Any]) -> dict[str, Any]:
    """The columns of `row` that `cls` has fields for."""
    names = cls.__dataclass_fields__  # type: ignore[attr-defined]
    return {k: v for k, v in row.items() if k in names}


@dataclass(frozen=True, slots=True)
class SourceState:
    """What a poll needs to ask a source again: its validators and its error count."""

    name: str
    etag: str | None
    last_modified: str | None
    next_check_at: datetime | None
    consecutive_errors: int


@dataclass(frozen=True, slots=True)
class SourceRow:
    name: str
    kind: str
    url: str
    etag: str | None = None
    last_modified: str | None = None
    next_check_at: str | None = None
    last_polled_at: str | None = None
    last_success_at: str | None = None
    consecutive_errors: int = 0
    last_error: str | None = None
    last_error_at: str | None = None
    items_seen: int = 0
    polls: int = 0
    errors: int = 0
    next_reason: str | None = None
    resolved: int = 0  # aggregator links resolved to the publisher's
    unresolved: int = 0  # aggregator links that could not be (yet)

    @classmethod
    def of(cls, row: dict[str, Any]) -> SourceRow:
        return cls(**_pick(cls, row))


@dataclass(frozen=True, slots=True)
class NewArticle:
    """An article to store: an original (indexed for search and near-duplicates) unless
    `duplicate_of` names the stored one it copies."""

    source: str
    url: str
    canonical_url: str
    title: str
    fetched_at: str
    text: str
    text_hash: str
    guid: str | None = None
    author: str | None = None
    published_at: str | None = None
    language: str | None = None
    duplicate_of: int | None = None
    duplicate_reason: str | None = None
    page_pending: bool = False
    updated_marker: str | None = None
    via: str | None = None  # the aggregator link the URL was resolved from
    publisher: str | None = None
    links: str | None = None  # JSON array of the outbound links the text carries


@dataclass(frozen=True, slots=True)
class Article:
    id: int
    source: str
    url: str
    canonical_url: str
    guid: str | None
    title: str
    author: str | None
    published_at: str | None
    fetched_at: str
    language: str | None
    text: str
    text_hash: str
    revision: int
    duplicate_of: int | None
    duplicate_reason: str | None
    page_pending: bool
    updated_marker: str | None
    via: str | None = None
    publisher: str | None = None
    links: str | None = None

    @classmethod
    def of(cls, row: dict[str, Any]) -> Article:
        values = _pick(cls, row)
        values["page_pending"] = bool(values["page_pending"])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Revision:
    article_id: int
    revision: int
    title: str
    text: str
    text_hash: str
    fetched_at: str
    reason: str


@dataclass(frozen=True, slots=True)
class StoredHit:
    """One hit of an article's latest revision with hits; offsets into its text, or into its title
    when `field` is "title"."""

    entity_id: str
    field: str
    text: str
    start: int
    end: int
    snippet: str
    revision: int


@dataclass(frozen=True, slots=True)
class EvidenceRow:
    article_id: int
    url: str
    fetched_at: str
    status: int
    sha256: str
    reason: str
    warc_file: str
    warc_offset: int
    warc_length: int
    id: int = 0
    record_id: str | None = None
    record_sha256: str | None = None  # of the record bytes (offset, length) as stored
    tsa_token: bytes | None = None  # the RFC 3161 TimeStampResp over record_sha256
    tsa_time: str | None = None
    tsa_error: str | None = None


@dataclass(frozen=True, slots=True)
class EventRow:
    id: int
    kind: str
    revision: int
    detail: dict[str, Any]
    found_at: str


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    delivery_id: str
    channel: str
    event: EventRef | None  # None: a digest
    article_id: int | None
    entities: tuple[str, ...]
    attempts: int
    created_at: str
    payload: str | None


@dataclass(frozen=True, slots=True)
class DigestLine:
    article_id: int
    entity_id: str
    event: EventRef
    created_at: str


@dataclass(frozen=True, slots=True)
class DeliveryCounts:
    sent: int
    pending: int  # waiting for a first attempt or a retry
    failing: int  # pending after an error


@dataclass(frozen=True, slots=True)
class FailingDelivery:
    channel: str
    event: str
    attempts: int
    last_error: str | None
    next_attempt_at: str


@dataclass(frozen=True, slots=True)
class FailingSource:
    name: str
    url: str
    last_error: str | None
    last_error_at: str | None
    consecutive_errors: int


@dataclass(frozen=True, slots=True)
class SearchResult:
    id: int
    title: str
    url: str
    source: str
    published_at: str | None
    fetched_at: str
    excerpt: str


@dataclass(frozen=True, slots=True)
class TriageRow:
    """A researcher's verdict on one mention (article, entity)."""

    article_id: int
    entity_id: str
    verdict: str  # "relevant" or "not-relevant"
    reason: str | None  # of a not-relevant one: "namesake", "another-directive", "other"
    note: str | None
    decided_at: str
    title: str | None = None  # of the article, in an entity's history
    url: str | None = None

    @classmethod
    def of(cls, row: dict[str, Any]) -> TriageRow:
        return cls(**_pick(cls, row))


@dataclass(frozen=True, slots=True)
class Mention:
    """One article naming one entity, with its triage state and how many copies were folded into it."""

    article_id: int
    entity_id: str
    first_seen_at: str
    title: str
    url: str
    source: str
    published_at: str | None
    fetched_at: str
    language: str | None
    verdict: str | None
    reason: str | None
    note: str | None
    copies: int

    @classmethod
    def of(cls, row: dict[str, Any]) -> Mention:
        return cls(**_pick(cls, row))
