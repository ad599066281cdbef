"""The payloads of SPEC section 6, typed, and their builders: an alert (`mention`, `changed`,
`removed`) and a digest. Every channel renders one of these; the webhook sends it as it is.
Pure: built from typed rows, no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal, NotRequired, TypedDict

from d24watch.models import EventKind
from d24watch.secret import redact
from d24watch.store.rows import Article, FailingSource, StoredHit
from d24watch.watchlist import EntityKind, Priority, Watchlist


class HitPayload(TypedDict):
    text: str
    start: int
    end: int
    snippet: str
    field: NotRequired[str]  # "title" when the offsets are into the title


class ArticlePayload(TypedDict):
    url: str
    canonical_url: str
    title: str
    source: str
    published: str | None
    language: str | None
    via: NotRequired[str]  # the aggregator link `url` was resolved from
    publisher: NotRequired[str]  # the outlet the aggregator names


class EntityPayload(TypedDict):
    id: str
    label: str
    kind: EntityKind
    hits: list[HitPayload]


class Change(TypedDict, total=False):
    """What an event found: an edit (`revision`, `diff`, `entities_gone`) or a takedown
    (`reason`, `status`, `final_url`), and the WARC record of the answer that shows it."""

    revision: int
    diff: str
    entities_gone: list[str]
    reason: str
    status: int
    final_url: str | None
    record_id: str | None


class AlertPayload(TypedDict):
    event: EventKind
    delivery_id: str
    detected_at: str
    article: ArticlePayload
    entities: list[EntityPayload]
    change: NotRequired[Change]


class DigestItem(TypedDict):
    event: EventKind
    detected_at: str
    article: ArticlePayload
    hits: list[HitPayload]
    change: NotRequired[Change]


class DigestGroup(TypedDict):
    id: str
    label: str
    kind: EntityKind
    priority: Priority
    articles: list[DigestItem]


class FailingSourcePayload(TypedDict):
    name: str
    url: str
    error: str
    since: str | None
    errors: int


class DigestPayload(TypedDict):
    event: Literal["digest"]
    delivery_id: str
    created_at: str
    count: int  # articles
    entities: list[DigestGroup]
    failing_sources: list[FailingSourcePayload]


Payload = AlertPayload | DigestPayload


def article_fields(row: Article) -> ArticlePayload:
    """The `article` object of a payload."""
    out: ArticlePayload = {
        "url": row.url,
        "canonical_url": row.canonical_url,
        "title": row.title,
        "source": row.source,
        "published": row.published_at,
        "language": row.language,
    }
    if row.via:
        out["via"] = row.via
    if row.publisher:
        out["publisher"] = row.publisher
    return out


def hit_payload(hit: StoredHit) -> HitPayload:
    out: HitPayload = {"text": hit.text, "start": hit.start, "end": hit.end, "snippet": hit.snippet}
    if hit.field != "text":
        out["field"] = hit.field
    return out


def entities_payload(watchlist: Watchlist, hits: Mapping[str, list[StoredHit]]) -> list[EntityPayload]:
    """The `entities` list of a payload: each entity with its label, kind and hits, by id."""
    out: list[EntityPayload] = []
    for entity_id, entity_hits in sorted(hits.items()):
        entity = watchlist.get(entity_id)
        out.append(
            {
                "id": entity_id,
                "label": entity.label if entity else entity_id,
                "kind": entity.kind if entity else "topic",
                "hits": [hit_payload(h) for h in entity_hits],
            }
        )
    return out


def alert_payload(
    event: EventKind,
    delivery_id: str,
    detected_at: str,
    article: ArticlePayload,
    entities: list[EntityPayload],
    change: Change | None = None,
) -> AlertPayload:
    """SPEC section 6's payload; `changed` and `removed` events add `change` (the revision and a
    short diff, or the reason and HTTP status of the removal)."""
    payload: AlertPayload = {
        "event": event,
        "delivery_id": delivery_id,
        "detected_at": detected_at,
        "article": article,
        "entities": entities,
    }
    if change is not None:
        payload["change"] = change
    return payload


def failing_source_payload(row: FailingSource) -> FailingSourcePayload:
    """A failing source as the digest lists it, with any secret in its URL or error redacted."""
    return {
        "name": row.name,
        "url": redact(row.url),
        "error": redact(row.last_error or ""),
        "since": row.last_error_at,
        "errors": row.consecutive_errors,
    }


DigestRow = tuple[EventKind, str, ArticlePayload, list[EntityPayload], Change | None]


def digest_payload(
    delivery_id: str,
    created_at: str,
    watchlist: Watchlist,
    lines: Iterable[DigestRow],
    failing_sources: list[FailingSourcePayload],
) -> DigestPayload:
    """One digest: `lines` are (event, detected_at, article, entities, change) with one entity each,
    grouped here by entity (high priority first, then by label), newest article first."""
    groups: dict[str, DigestGroup] = {}
    urls: set[str] = set()
    for event, detected_at, article, entities, change in lines:
        urls.add(article["canonical_url"])
        for entity in entities:
            group = groups.setdefault(
                entity["id"],
                {
                    "id": entity["id"],
                    "label": entity["label"],
                    "kind": entity["kind"],
                    "priority": _priority(watchlist, entity["id"]),
                    "articles": [],
                },
            )
            item: DigestItem = {"event": event, "detected_at": detected_at, "article": article, "hits": entity["hits"]}
            if change is not None:
                item["change"] = change
            group["articles"].append(item)
    for group in groups.values():
        group["articles"].sort(key=lambda a: a["article"]["published"] or a["detected_at"] or "", reverse=True)
    ordered = sorted(groups.values(), key=lambda g: (g["priority"] != "high", g["label"].casefold()))
    return {
        "event": "digest",
        "delivery_id": delivery_id,
        "created_at": created_at,
        "count": len(urls),
        "entities": ordered,
        "failing_sources": failing_sources,
    }


def _priority(watchlist: Watchlist, entity_id: str) -> Priority:
    entity = watchlist.get(entity_id)
    return entity.priority if entity else "normal"


def payload_time(payload: Payload) -> str:
    """When the payload was made: a digest's `created_at`, an alert's `detected_at`."""
    return payload["created_at"] if payload["event"] == "digest" else payload["detected_at"]
