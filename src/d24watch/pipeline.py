"""One poll cycle, in order: fetch each due source, parse it, look up what the store knows of its
items, fetch and extract the new pages, look up possible originals, match, and store what the
decisions say (one transaction per source), queuing alerts. The rules live in decide and alerts;
this module fetches, looks up, asks and applies."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from d24watch.alerts import AlertPlan, Occasion, plan_alerts
from d24watch.channels import ChannelConfig
from d24watch.config import Config, SourceConfig
from d24watch.decide import (
    DuplicateOf,
    Intent,
    candidates,
    duplicate_of,
    feed_text,
    next_poll_after_success,
    page_canonical,
    plan_items,
    retry_wait,
    revision_reason,
    text_to_keep,
)
from d24watch.dedupe import Signature
from d24watch.errors import FetchError, ParseError, SourceError
from d24watch.evidence import Archive
from d24watch.extract import extract_and_prepare
from d24watch.fetch import Fetcher
from d24watch.match import Matcher
from d24watch.models import EntityMatch, FeedEntry, FetchResult, SourceReport
from d24watch.parse import article_links, looks_like_feed, parse_feed
from d24watch.prepare import Prepared, prepare
from d24watch.store import Store, iso
from d24watch.store.rows import NewArticle
from d24watch.watched import WatchedPage
from d24watch.workers import Workers

log = logging.getLogger(__name__)

FEED_ACCEPT = "application/rss+xml, application/atom+xml, application/feed+json, application/xml;q=0.9, */*;q=0.8"
PAGE_ACCEPT = "text/html, application/xhtml+xml, */*;q=0.8"


@dataclass(frozen=True, slots=True)
class Read:
    """What reading an item gave: the text to keep, and the page as received when it is evidence."""

    prepared: Prepared
    page_failed: bool = False  # the page could not be fetched or read: the feed's text stands in
    error: str | None = None
    response: FetchResult | None = None  # kept only when the page names an entity
    matches: tuple[EntityMatch, ...] | None = None  # of the page's title and text, when already known


@dataclass
class Outcome:
    """What one source's update stored, counted as it goes."""

    new: int = 0
    duplicates: int = 0
    revisions: int = 0
    hits: int = 0
    entities: Counter[str] = field(default_factory=Counter)  # entity -> articles newly matched

    def alerted(self, plan: AlertPlan) -> None:
        self.hits += sum(len(m.hits) for m in plan.hits)
        self.entities.update(plan.entities)

    def report(self, name: str, page_errors: int = 0) -> SourceReport:
        return SourceReport(
            name,
            ok=True,
            new=self.new,
            duplicates=self.duplicates,
            revisions=self.revisions,
            hits=self.hits,
            matched_entities=tuple(sorted(self.entities)),
            articles_per_entity=tuple(sorted(self.entities.items())),
            page_errors=page_errors,
        )


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
                accept=FEED_ACCEPT if source.kind == "feed" else "text/html, */*;q=0.8",
            )
            if result.not_modified:
                with self.store.transaction():
                    self._success(source, started, result, 0, keep_validators=True)
                    self.store.log_poll(source.name, started, self.clock(), True, 0, 0, None)
                return SourceReport(source.name, ok=True, not_modified=True)
            if source.watch == "removal":
                return await self._watch_page(source, started, result)
            entries = await self._entries(source, result)
        except SourceError as exc:
            return self._failure(source, state.consecutive_errors, started, exc)
        intents = plan_items(
            (c, self.store.seen_item(source.name, c.url, c.entry.guid), self.store.by_canonical(c.canonical))
            for c in candidates(source.url, entries)
        )
        reads = await asyncio.gather(
            *(self._read(fetcher, source, i.candidate.entry) for i in intents if i.action != "duplicate")
        )
        outcome = Outcome()
        with self.store.transaction():
            pending = iter(reads)
            for intent in intents:
                if intent.action == "duplicate":
                    self._store_copy(source, intent, outcome)
                elif intent.action == "new":
                    self._store_new(source, intent, next(pending), outcome)
                else:
                    self._store_revision(intent, next(pending), outcome)
            self._success(source, started, result, len(intents))
            self.store.log_poll(source.name, started, self.clock(), True, outcome.new, outcome.duplicates, None)
        if outcome.entities and self.on_queued is not None:
            self.on_queued()
        return outcome.report(source.name, page_errors=sum(1 for r in reads if r.error))

    async def _entries(self, source: SourceConfig, result: FetchResult) -> list[FeedEntry]:
        body = result.body
        if source.kind == "feed" or looks_like_feed(body):
            parsed = await self.workers.run(source.url, parse_feed, body, result.url, result.content_type)
            entries = list(parsed.entries)
        else:
            links = await self.workers.run(source.url, article_links, body, result.url)
            entries = [FeedEntry(None, link, text, "", None, None) for link, text in links]
        return entries[: self.config.fetch.max_items_per_source]

    # -- pages watched for removal -----------------------------------------------------------

    async def _watch_page(self, source: SourceConfig, started: datetime, result: FetchResult) -> SourceReport:
        prepared = await self.workers.run(source.url, extract_and_prepare, result.body, result.charset, True)
        watched = WatchedPage(self.store, self.matcher, self.channels, self.archive, self.clock)
        with self.store.transaction():
            outcome = watched.update(source, prepared, result)
            self._success(source, started, result, 1)
            self.store.log_poll(source.name, started, self.clock(), True, outcome.new, 0, None)
        if outcome.queued and self.on_queued is not None:
            self.on_queued()
        return SourceReport(
            source.name,
            ok=True,
            new=outcome.new,
            revisions=outcome.revisions,
            matched_entities=tuple(sorted(outcome.entities)),
            articles_per_entity=tuple(sorted(outcome.entities.items())),
        )

    # -- pages -------------------------------------------------------------------------------

    async def _read(self, fetcher: Fetcher, source: SourceConfig, entry: FeedEntry) -> Read:
        """The item's page fetched and extracted, or the feed's own text when there is no page, it
        cannot be read, or it gives less than the feed."""
        fallback = feed_text(entry, source.language)
        if not entry.link:
            return Read(prepare(fallback))
        try:
            async with self.pages_in_hand:
                result = await fetcher.get(entry.link, accept=PAGE_ACCEPT)
                needs_metadata = not (entry.title and entry.published_at)
                prepared = await self.workers.run(
                    entry.link, extract_and_prepare, result.body, result.charset, needs_metadata
                )
        except SourceError as exc:
            log.info("page_failed source=%s url=%s error=%s", source.name, entry.link, exc.message)
            return Read(prepare(fallback), page_failed=True, error=exc.message)
        kept = text_to_keep(entry, source.language, prepared.article)
        if kept is not None:
            return Read(prepare(kept))
        if self.archive is None:
            return Read(prepared)
        # Matched here, once, to know whether the page is evidence; storing reuses the result.
        matches = tuple(self.matcher.match(entry.title or prepared.article.title or "", prepared.article.text))
        return Read(prepared, response=result if matches else None, matches=matches)

    # -- storing -----------------------------------------------------------------------------

    def _article(
        self, source: SourceConfig, intent: Intent, read: Read | None, canonical: str, copy: DuplicateOf | None = None
    ) -> NewArticle:
        entry = intent.candidate.entry
        article = read.prepared.article if read else None
        published = entry.published_at or (article.published_at if article else None)
        return NewArticle(
            source=source.name,
            url=intent.candidate.url,
            canonical_url=canonical,
            guid=entry.guid,
            title=entry.title or (article.title if article and article.title else "") or "",
            author=entry.author or (article.author if article else None),
            published_at=iso(published),
            fetched_at=iso(self.clock()) or "",
            language=(article.language if article else None) or source.language,
            text=article.text if article else "",
            text_hash=read.prepared.text_hash if read else "",
            duplicate_of=copy.article_id if copy else None,
            duplicate_reason=copy.reason if copy else None,
            page_pending=bool(read and read.page_failed) and copy is None,
            updated_marker=entry.updated_marker,
        )

    def _store_copy(self, source: SourceConfig, intent: Intent, outcome: Outcome) -> None:
        """A copy by URL: of a stored original, or of an item stored earlier in this batch."""
        original = intent.known or self.store.by_canonical(intent.candidate.canonical)
        if original is None:
            return
        row = self._article(source, intent, None, intent.candidate.canonical, DuplicateOf(original.id, "url"))
        self.store.insert_article(row, None)
        outcome.duplicates += 1

    def _store_new(self, source: SourceConfig, intent: Intent, read: Read, outcome: Outcome) -> None:
        prepared = read.prepared
        canonical = page_canonical(intent.candidate.canonical, prepared.article.canonical_url)
        sig = Signature.from_bytes(prepared.signature, prepared.shingles)
        copy = duplicate_of(
            by_canonical=self.store.by_canonical(canonical) if canonical != intent.candidate.canonical else None,
            by_hash=self.store.by_text_hash(prepared.text_hash),
            near=self.store.near_candidates(sig),
            sig=sig,
            text=prepared.article.text,
            threshold=self.threshold,
        )
        if copy is not None:
            row = self._article(source, intent, read, canonical, copy)
            self.store.insert_article(row, None)
            outcome.duplicates += 1
            return
        row = self._article(source, intent, read, canonical)
        article_id = self.store.insert_article(row, sig, prepared.folded)
        outcome.new += 1
        self._alert("new", article_id, 1, self._matches(read, row.title), frozenset(), outcome, read, "alert")

    def _store_revision(self, intent: Intent, read: Read, outcome: Outcome) -> None:
        known, prepared, entry = intent.known, read.prepared, intent.candidate.entry
        assert known is not None
        reason = revision_reason(known, prepared.text_hash, prepared.article.text, page_failed=read.page_failed)
        if reason is None:
            self.store.touch_article(known.id, page_pending=read.page_failed, updated_marker=entry.updated_marker)
            return
        title = entry.title or prepared.article.title or ""
        revision = self.store.add_revision(
            known.id,
            title=title,
            text=prepared.article.text,
            digest=prepared.text_hash,
            fetched_at=self.clock(),
            reason=reason,
            sig=Signature.from_bytes(prepared.signature, prepared.shingles),
            page_pending=read.page_failed,
            updated_marker=entry.updated_marker,
            folded=prepared.folded,
        )
        outcome.revisions += 1
        had = self.store.entities_of(known.id)
        self._alert("revision", known.id, revision, self._matches(read, title), had, outcome, read, "revision")

    def _alert(
        self,
        occasion: Occasion,
        article_id: int,
        revision: int,
        matches: list[EntityMatch],
        had: frozenset[str],
        outcome: Outcome,
        read: Read,
        evidence_reason: str,
    ) -> None:
        plan = plan_alerts(
            occasion,
            article_id=article_id,
            matches=matches,
            had=had,
            channels=self.channels,
            watchlist=self.matcher.watchlist,
        )
        self.store.apply_alerts(article_id, revision, plan, self.clock())
        outcome.alerted(plan)
        if matches:
            self._keep_evidence(article_id, read.response, evidence_reason)

    def _matches(self, read: Read, title: str) -> list[EntityMatch]:
        if read.matches is not None:
            return list(read.matches)
        return self.matcher.match(title, read.prepared.article.text)

    def _keep_evidence(self, article_id: int, response: FetchResult | None, reason: str) -> None:
        """The page as received goes into the WARC archive, and the article gets its re-checks."""
        now = self.clock()
        if self.archive is not None and response is not None:
            snap = self.archive.keep(response, now)
            self.store.add_evidence(article_id, response.url, now, response.status, reason, snap)
        self.store.schedule_rechecks(article_id, [now + delay for delay in self.config.recheck])

    # -- source state ------------------------------------------------------------------------

    def _success(
        self, source: SourceConfig, started: datetime, result: FetchResult, items: int, keep_validators: bool = False
    ) -> None:
        self.store.record_source_success(
            source.name,
            now=started,
            next_check_at=next_poll_after_success(source.name, started, source.interval),
            etag=result.etag,
            last_modified=result.last_modified,
            items=items,
            keep_validators=keep_validators,
        )

    def _failure(self, source: SourceConfig, errors: int, started: datetime, exc: SourceError) -> SourceReport:
        wait = retry_wait(source.interval, errors, exc.retry_after_s)
        kind = "fetch" if isinstance(exc, FetchError) else "parse" if isinstance(exc, ParseError) else "source"
        message = f"{kind}: {exc.message}"
        log.warning("source_failed source=%s error=%s retry_in_s=%s", source.name, message, int(wait.total_seconds()))
        with self.store.transaction():
            self.store.record_source_failure(source.name, now=started, next_check_at=started + wait, error=message)
            self.store.log_poll(source.name, started, self.clock(), False, 0, 0, message)
        return SourceReport(source.name, ok=False, error=message)
