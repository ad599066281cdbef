"""One poll cycle, in order: fetch each due source, parse, decide what is new, fetch and extract
new pages, dedupe, match, store (one transaction per source) and queue deliveries. The rules live
in dedupe, match and deliver.outbox; this module only calls them in order."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from d24watch.config import ChannelConfig, Config, SourceConfig
from d24watch.dedupe import Signature, canonical_url, is_near_duplicate
from d24watch.deliver.outbox import digest_channels, plan_immediate
from d24watch.errors import FetchError, ParseError, SourceError
from d24watch.evidence import Archive
from d24watch.extract import extract_and_prepare
from d24watch.fetch import Fetcher
from d24watch.match import Matcher
from d24watch.models import ArticleText, EntityMatch, FeedEntry, FetchResult, SourceReport
from d24watch.parse import article_links, looks_like_feed, parse_feed
from d24watch.prepare import Prepared, prepare
from d24watch.store import KnownArticle, Store, backoff, iso
from d24watch.workers import Workers

log = logging.getLogger(__name__)
DAY = timedelta(days=1)


@dataclass
class Item:
    """One feed entry or listing link on its way to the store."""

    entry: FeedEntry
    url: str
    canonical: str
    action: str  # "new", "duplicate", "revise"
    known: KnownArticle | None = None
    prepared: Prepared | None = None
    page_pending: bool = False
    page_error: str | None = None
    response: FetchResult | None = None  # the page as received, kept only when it names an entity
    matches: list[EntityMatch] | None = None  # of the page's title and text, when already known


@dataclass
class Outcome:
    new: int = 0
    duplicates: int = 0
    revisions: int = 0
    hits: int = 0
    entities: list[str] = field(default_factory=list)


def _jitter(name: str, interval: timedelta) -> timedelta:
    """A stable spread of up to a tenth of the interval, so sources with one interval drift apart."""
    fraction = int(hashlib.sha256(name.encode()).hexdigest()[:4], 16) / 0xFFFF
    return interval * 0.1 * fraction


def charset_of(result: FetchResult) -> str | None:
    for part in result.headers.get("content-type", "").split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            return value.strip("\"' ")
    return None


class Pipeline:
    def __init__(
        self,
        config: Config,
        store: Store,
        matcher: Matcher,
        workers: Workers,
        *,
        clock: Callable[[], datetime],
        channels: tuple[ChannelConfig, ...] | None = None,
        on_queued: Callable[[], None] | None = None,
        archive: Archive | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.matcher = matcher
        self.workers = workers
        self.clock = clock
        self.channels = config.channels if channels is None else channels
        self.threshold = config.near_duplicate_threshold
        self.on_queued = on_queued  # told after a commit that queued deliveries, so they go out at once
        self.archive = archive
        # Pages being fetched or waiting for a worker: enough to keep every worker busy while
        # requests are in flight, few enough that fetching (faster than extraction) cannot pile
        # up bodies in memory.
        self.pages_in_hand = asyncio.Semaphore(config.fetch.concurrency + 2 * workers.size)

    async def poll(
        self, sources: list[SourceConfig], progress: Callable[[SourceReport], None] | None = None
    ) -> list[SourceReport]:
        async with Fetcher(self.config.fetch) as fetcher:

            async def one(source: SourceConfig) -> SourceReport:
                report = await self.update_source(fetcher, source)
                if progress is not None:
                    progress(report)
                return report

            return list(await asyncio.gather(*(one(s) for s in sources)))

    async def update_source(self, fetcher: Fetcher, source: SourceConfig) -> SourceReport:
        started = self.clock()
        state = self.store.source_state(source.name)
        try:
            result = await fetcher.get(
                source.url,
                etag=state.etag,
                last_modified=state.last_modified,
                trusted=True,
                accept="application/rss+xml, application/atom+xml, application/feed+json, application/xml;q=0.9, */*;q=0.8"
                if source.kind == "feed"
                else "text/html, */*;q=0.8",
            )
            if result.not_modified:
                with self.store.transaction():
                    self._success(source, started, result, 0, keep_validators=True)
                    self.store.log_poll(source.name, started, self.clock(), True, 0, 0, None)
                return SourceReport(source.name, ok=True, not_modified=True)
            if source.watch == "removal":
                return await self._watch_page(source, started, result)
            items = await self._items(source, result)
        except SourceError as exc:
            return self._failure(source, state.consecutive_errors, started, exc)
        await self._fetch_pages(fetcher, source, [i for i in items if i.action in ("new", "revise")])
        with self.store.transaction():
            outcome = self._apply(source, items)
            self._success(source, started, result, len(items))
            self.store.log_poll(source.name, started, self.clock(), True, outcome.new, outcome.duplicates, None)
        if outcome.entities and self.on_queued is not None:
            self.on_queued()
        page_errors = sum(1 for i in items if i.page_error)
        return SourceReport(
            source.name,
            ok=True,
            new=outcome.new,
            duplicates=outcome.duplicates,
            revisions=outcome.revisions,
            hits=outcome.hits,
            page_errors=page_errors,
            matched_entities=tuple(sorted(set(outcome.entities))),
        )

    # -- pages watched for removal -----------------------------------------------------------

    async def _watch_page(self, source: SourceConfig, started: datetime, result: FetchResult) -> SourceReport:
        """A page kept as one article: what it names at first is the baseline (no alert); an entity
        it stops naming is a `removed` event, one it starts naming a mention."""
        prepared = await self.workers.run(source.url, extract_and_prepare, result.body, charset_of(result), True)
        text, title = prepared.article.text, prepared.article.title or source.name
        matches = self.matcher.match(title, text)
        named = {m.entity_id for m in matches}
        outcome = Outcome()
        now = self.clock()
        sig = Signature.from_bytes(prepared.signature, prepared.shingles)
        gone: list[str] = []
        with self.store.transaction():
            known = self.store.seen_item(source.name, source.url, None)
            if known is None:
                row = {
                    "source": source.name,
                    "url": source.url,
                    "canonical_url": canonical_url(source.url),
                    "guid": None,
                    "title": title,
                    "author": None,
                    "published_at": None,
                    "fetched_at": iso(now),
                    "language": prepared.article.language or source.language,
                    "text": text,
                    "text_hash": prepared.text_hash,
                }
                article_id = self.store.insert_article(row, sig, prepared.folded)
                for match in matches:
                    self.store.record_hits(article_id, 1, match.entity_id, match.hits, now)
                if matches:
                    self._keep_evidence(article_id, result, "baseline", recheck=False)
                outcome.new = 1
            elif prepared.text_hash != known.text_hash:
                before = self.store.entities_of(known.id)
                revision = self.store.add_revision(
                    known.id,
                    title=title,
                    text=text,
                    digest=prepared.text_hash,
                    fetched_at=now,
                    reason="watched",
                    sig=sig,
                    page_pending=False,
                    updated_marker=None,
                    folded=prepared.folded,
                )
                outcome.revisions = 1
                self._record(known.id, revision, matches, before, outcome)
                gone = sorted(before - named)
                if gone:
                    labels = ", ".join(e.label for e in (self.matcher.watchlist.get(g) for g in gone) if e)
                    detail = {
                        "reason": f"{labels} no longer named on the page",
                        "entities_gone": gone,
                        "status": result.status,
                        "final_url": result.url,
                    }
                    event_id = self.store.add_event(known.id, "removed", revision, detail, now)
                    queue_deliveries(
                        self.store, self.channels, self.matcher, known.id, gone, f"removed:{event_id}", now
                    )
                    self.store.forget_entities(known.id, gone)
                if gone or named - before:
                    self._keep_evidence(known.id, result, "watched", recheck=False)
            self._success(source, started, result, 1)
            self.store.log_poll(source.name, started, self.clock(), True, outcome.new, 0, None)
        if (outcome.entities or gone) and self.on_queued is not None:
            self.on_queued()
        return SourceReport(
            source.name,
            ok=True,
            new=outcome.new,
            revisions=outcome.revisions,
            matched_entities=tuple(sorted(set(outcome.entities))),
        )

    # -- deciding what each entry is ---------------------------------------------------------

    async def _items(self, source: SourceConfig, result: FetchResult) -> list[Item]:
        body = result.body
        if source.kind == "feed" or looks_like_feed(body):
            parsed = await self.workers.run(source.url, parse_feed, body, result.url, result.content_type)
            entries = list(parsed.entries)
        else:
            links = await self.workers.run(source.url, article_links, body, result.url)
            entries = [FeedEntry(None, link, text, "", None, None) for link, text in links]
        return self._plan(source, entries[: self.config.fetch.max_items_per_source])

    def _plan(self, source: SourceConfig, entries: list[FeedEntry]) -> list[Item]:
        items: list[Item] = []
        seen_guids: set[str] = set()
        seen_urls: set[str] = set()
        planned: set[str] = set()  # canonical URLs of this batch's new items
        for entry in entries:
            if not entry.link and not entry.guid and not entry.title and not entry.summary:
                continue
            key = entry.guid or entry.link or ""
            if entry.guid and entry.guid in seen_guids:
                continue  # the same GUID twice in one feed: the first one stands
            url = entry.link or self._placeholder_url(source, entry)
            if url in seen_urls:
                continue
            seen_guids.add(key)
            seen_urls.add(url)
            canonical = canonical_url(url)
            known = self.store.seen_item(source.name, url, entry.guid)
            if known is not None:
                if known.duplicate_of is not None:
                    continue
                edited = entry.updated_marker and known.updated_marker and entry.updated_marker != known.updated_marker
                if (known.page_pending and entry.link) or edited:
                    items.append(Item(entry, url, canonical, "revise", known=known))
                continue
            original = self.store.by_canonical(canonical)
            if original is not None or canonical in planned:
                # A copy of an item earlier in this batch is resolved once that one is stored.
                items.append(Item(entry, url, canonical, "duplicate", known=original))
            else:
                planned.add(canonical)
                items.append(Item(entry, url, canonical, "new"))
        return items

    @staticmethod
    def _placeholder_url(source: SourceConfig, entry: FeedEntry) -> str:
        key = entry.guid or hashlib.sha256((entry.title + entry.summary).encode()).hexdigest()[:16]
        return f"{source.url}#item-{hashlib.sha256(key.encode()).hexdigest()[:16]}"

    # -- pages -------------------------------------------------------------------------------

    async def _fetch_pages(self, fetcher: Fetcher, source: SourceConfig, items: list[Item]) -> None:
        await asyncio.gather(*(self._fetch_page(fetcher, source, item) for item in items))

    async def _fetch_page(self, fetcher: Fetcher, source: SourceConfig, item: Item) -> None:
        fallback = ArticleText(
            item.entry.summary,
            item.entry.title or None,
            item.entry.author,
            item.entry.published_at,
            source.language,
            None,
        )
        if not item.entry.link:
            item.prepared = prepare(fallback)
            return
        try:
            async with self.pages_in_hand:
                result = await fetcher.get(item.entry.link, accept="text/html, application/xhtml+xml, */*;q=0.8")
                needs_metadata = not (item.entry.title and item.entry.published_at)
                prepared = await self.workers.run(
                    item.entry.link, extract_and_prepare, result.body, charset_of(result), needs_metadata
                )
        except SourceError as exc:
            log.info("page_failed source=%s url=%s error=%s", source.name, item.entry.link, exc.message)
            item.page_error = exc.message
            item.page_pending = True
            item.prepared = prepare(fallback)
            return
        article = prepared.article
        if len(article.text) < len(item.entry.summary) // 2:
            # The page gave less than the feed itself (a paywall, a script-only page): keep the feed's text.
            item.prepared = prepare(
                replace(fallback, canonical_url=article.canonical_url, language=article.language or source.language)
            )
            return
        item.prepared = prepared
        if self.archive is not None:
            # Matched here, once, to know whether the page is evidence; storing reuses the result.
            item.matches = self.matcher.match(item.entry.title or article.title or "", article.text)
            if item.matches:
                item.response = result  # other bodies are not kept

    # -- storing -----------------------------------------------------------------------------

    def _apply(self, source: SourceConfig, items: list[Item]) -> Outcome:
        outcome = Outcome()
        for item in items:
            if item.action == "duplicate":
                original = item.known or self.store.by_canonical(item.canonical)
                if original is not None:
                    self._store_duplicate(source, item, original.id, "url")
                    outcome.duplicates += 1
            elif item.action == "new":
                self._store_new(source, item, outcome)
            else:
                self._store_revision(item, outcome)
        return outcome

    def _row(self, source: SourceConfig, item: Item, canonical: str) -> dict[str, object]:
        prepared = item.prepared
        article = prepared.article if prepared else None
        published = item.entry.published_at or (article.published_at if article else None)
        return {
            "source": source.name,
            "url": item.url,
            "canonical_url": canonical,
            "guid": item.entry.guid,
            "title": item.entry.title or (article.title if article and article.title else "") or "",
            "author": item.entry.author or (article.author if article else None),
            "published_at": iso(published),
            "fetched_at": iso(self.clock()),
            "language": (article.language if article else None) or source.language,
            "text": article.text if article else "",
            "text_hash": prepared.text_hash if prepared else "",
            "page_pending": int(item.page_pending),
            "updated_marker": item.entry.updated_marker,
        }

    def _store_duplicate(
        self, source: SourceConfig, item: Item, original: int, reason: str, canonical: str | None = None
    ) -> None:
        row = self._row(source, item, canonical or item.canonical)
        row.update(duplicate_of=original, duplicate_reason=reason, page_pending=0)
        self.store.insert_article(row, None)

    def _store_new(self, source: SourceConfig, item: Item, outcome: Outcome) -> None:
        prepared = item.prepared
        assert prepared is not None
        canonical = item.canonical
        if prepared.article.canonical_url:
            canonical = canonical_url(prepared.article.canonical_url)
        sig = Signature.from_bytes(prepared.signature, prepared.shingles)
        original = self.store.by_canonical(canonical) if canonical != item.canonical else None
        reason = "canonical"
        if original is None and prepared.article.text.strip():
            original, reason = self.store.by_text_hash(prepared.text_hash), "text"
        if original is None:
            near = self.store.near_duplicate(sig, lambda new, old: is_near_duplicate(new, old, self.threshold))
            original = self.store.by_id(near) if near is not None else None
            reason = "near"
        if original is not None:
            self._store_duplicate(source, item, original.id, reason, canonical)
            outcome.duplicates += 1
            return
        row = self._row(source, item, canonical)
        article_id = self.store.insert_article(row, sig, prepared.folded)
        outcome.new += 1
        matches = self._matches(item, str(row["title"]))
        self._record(article_id, 1, matches, set(), outcome)
        if matches:
            self._keep_evidence(article_id, item.response, "alert")

    def _store_revision(self, item: Item, outcome: Outcome) -> None:
        known, prepared = item.known, item.prepared
        assert known is not None and prepared is not None
        if prepared.text_hash == known.text_hash or (item.page_pending and not prepared.article.text):
            self.store.touch_article(known.id, page_pending=item.page_pending, updated_marker=item.entry.updated_marker)
            return
        title = item.entry.title or prepared.article.title or ""
        revision = self.store.add_revision(
            known.id,
            title=title,
            text=prepared.article.text,
            digest=prepared.text_hash,
            fetched_at=self.clock(),
            reason="page" if known.page_pending else "edited",
            sig=Signature.from_bytes(prepared.signature, prepared.shingles),
            page_pending=item.page_pending,
            updated_marker=item.entry.updated_marker,
            folded=prepared.folded,
        )
        outcome.revisions += 1
        before = self.store.entities_of(known.id)
        matches = self._matches(item, title)
        self._record(known.id, revision, matches, before, outcome)
        if matches:
            self._keep_evidence(known.id, item.response, "revision")

    def _matches(self, item: Item, title: str) -> list[EntityMatch]:
        if item.matches is not None:
            return item.matches
        assert item.prepared is not None
        return self.matcher.match(title, item.prepared.article.text)

    def _keep_evidence(
        self, article_id: int, response: FetchResult | None, reason: str, *, recheck: bool = True
    ) -> None:
        """The page as received goes into the WARC archive, and the article gets its re-checks."""
        now = self.clock()
        if self.archive is not None and response is not None:
            snap = self.archive.keep(response, now)
            self.store.add_evidence(article_id, response.url, now, response.status, reason, snap)
        if recheck:
            self.store.schedule_rechecks(article_id, [now + delay for delay in self.config.recheck])

    def _record(
        self, article_id: int, revision: int, matches: list[EntityMatch], before: set[str], outcome: Outcome
    ) -> None:
        now = self.clock()
        for match in matches:
            self.store.record_hits(article_id, revision, match.entity_id, match.hits, now)
            outcome.hits += len(match.hits)
        fresh = [m.entity_id for m in matches if m.entity_id not in before]
        if not fresh:
            return
        outcome.entities.extend(fresh)
        queue_deliveries(self.store, self.channels, self.matcher, article_id, fresh, "mention", now)

    # -- source state ------------------------------------------------------------------------

    def _success(
        self, source: SourceConfig, started: datetime, result: FetchResult, items: int, keep_validators: bool = False
    ) -> None:
        next_at = started + source.interval + _jitter(source.name, source.interval)
        self.store.record_source_success(
            source.name,
            now=started,
            next_check_at=next_at,
            etag=result.etag,
            last_modified=result.last_modified,
            items=items,
            keep_validators=keep_validators,
        )

    def _failure(self, source: SourceConfig, errors: int, started: datetime, exc: SourceError) -> SourceReport:
        wait = backoff(source.interval, errors)
        if exc.retry_after_s is not None:
            wait = max(wait, min(DAY, timedelta(seconds=exc.retry_after_s)))
        kind = "fetch" if isinstance(exc, FetchError) else "parse" if isinstance(exc, ParseError) else "source"
        message = f"{kind}: {exc.message}"
        log.warning("source_failed source=%s error=%s retry_in_s=%s", source.name, message, int(wait.total_seconds()))
        with self.store.transaction():
            self.store.record_source_failure(source.name, now=started, next_check_at=started + wait, error=message)
            self.store.log_poll(source.name, started, self.clock(), False, 0, 0, message)
        return SourceReport(source.name, ok=False, error=message)


def queue_deliveries(
    store: Store,
    channels: tuple[ChannelConfig, ...],
    matcher: Matcher,
    article_id: int,
    entity_ids: list[str],
    event: str,
    now: datetime,
) -> None:
    """Queue one immediate message per channel for the high entities found together, and a digest
    line per entity; called inside the transaction that stored the hits."""
    for planned in plan_immediate(channels, matcher.watchlist, article_id, entity_ids, event):
        store.enqueue_delivery(planned.delivery_id, planned.channel, event, article_id, list(planned.entity_ids), now)
    for channel in digest_channels(channels):
        for entity_id in entity_ids:
            store.enqueue_digest(channel, article_id, entity_id, event, now)
