"""One poll cycle, in order: fetch each due source, parse it, look up what the store knows of its
items, fetch and extract the new pages, look up possible originals, match, and store what the
decisions say (one transaction per source), queuing alerts. The rules live in decide and alerts;
this module fetches, looks up, asks and applies."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from d24watch.channels import ChannelConfig
from d24watch.collect import Collector
from d24watch.config import Config, SourceConfig
from d24watch.decide import (
    QUIET_POLLS,
    Hints,
    cache_hints,
    candidates,
    describe,
    feed_text,
    next_poll,
    plan_items,
    retry_wait,
    text_to_keep,
)
from d24watch.errors import FetchError, ParseError, SourceError
from d24watch.evidence import Archive
from d24watch.extract import extract_and_prepare
from d24watch.fetch import PAGE_ACCEPT, Fetcher
from d24watch.ingest import Ingest, Read
from d24watch.match import Matcher
from d24watch.models import FeedEntry, FetchResult, SourceReport
from d24watch.prepare import prepare
from d24watch.store import Store
from d24watch.watched import WatchedPage
from d24watch.workers import Workers

log = logging.getLogger(__name__)


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
        self.on_queued = on_queued  # told after a commit that queued deliveries, so they go out at once
        self.archive = archive
        self.ingest = Ingest(
            store,
            matcher,
            self.channels,
            threshold=config.near_duplicate_threshold,
            recheck=config.recheck,
            archive=archive,
            clock=clock,
        )
        # Pages being fetched or waiting for a worker: enough to keep every worker busy while
        # requests are in flight, few enough that fetching (faster than extraction) cannot pile
        # up bodies in memory.
        self.collector = Collector(config, store, workers, clock)
        self.pages_in_hand = asyncio.Semaphore(config.fetch.concurrency + 2 * workers.size)

    async def poll(
        self, sources: list[SourceConfig], progress: Callable[[SourceReport], None] | None = None
    ) -> list[SourceReport]:
        async with Fetcher(self.config.fetch) as fetcher:

            async def one(source: SourceConfig) -> SourceReport:
                report = replace(await self.update_source(fetcher, source), kind=source.kind)
                if progress is not None:
                    progress(report)
                return report

            return list(await asyncio.gather(*(one(s) for s in sources)))

    async def update_source(self, fetcher: Fetcher, source: SourceConfig) -> SourceReport:
        started = self.clock()
        state = self.store.source_state(source.name)
        try:
            result = await self.collector.first(fetcher, source, state)
            if result.not_modified:
                with self.store.transaction():
                    self.store.log_poll(source.name, started, self.clock(), True, 0, 0, None)
                    self._success(source, started, cache_hints(result.headers, started), keep_validators=True)
                return SourceReport(source.name, ok=True, not_modified=True)
            if source.watch == "removal":
                return await self._watch_page(source, started, result)
            listing = await self.collector.listing(fetcher, source, result)
        except SourceError as exc:
            return self._failure(source, state.consecutive_errors, started, exc)
        intents = plan_items(
            (c, self.store.seen_item(source.name, c.url, c.entry.guid), self.store.by_canonical(c.canonical))
            for c in candidates(source.url, listing.entries)
        )
        reads = await asyncio.gather(
            *(self._read(fetcher, source, i.candidate.entry) for i in intents if i.action != "duplicate")
        )
        with self.store.transaction():
            outcome = self.ingest.apply(source, intents, list(reads))
            self.store.log_poll(source.name, started, self.clock(), True, outcome.new, outcome.duplicates, None)
            self._success(source, started, listing.hints, result, len(intents))
            self.store.set_marks(source.name, listing.marks)
            if listing.resolved or listing.unresolved:
                self.store.count_resolutions(source.name, resolved=listing.resolved, unresolved=listing.unresolved)
        if outcome.queued and self.on_queued is not None:
            self.on_queued()
        report = outcome.report(source.name, page_errors=sum(1 for r in reads if r.error))
        return replace(report, resolved=listing.resolved, unresolved=listing.unresolved, found=len(listing.entries))

    # -- pages watched for removal -----------------------------------------------------------

    async def _watch_page(self, source: SourceConfig, started: datetime, result: FetchResult) -> SourceReport:
        prepared = await self.workers.run(source.url, extract_and_prepare, result.body, result.charset, True)
        watched = WatchedPage(self.store, self.matcher, self.channels, self.archive, self.clock)
        with self.store.transaction():
            outcome = watched.update(source, prepared, result)
            self.store.log_poll(source.name, started, self.clock(), True, outcome.new, 0, None)
            self._success(source, started, cache_hints(result.headers, started), result, 1)
        if outcome.queued and self.on_queued is not None:
            self.on_queued()
        return outcome.report(source.name)

    # -- pages -------------------------------------------------------------------------------

    async def _read(self, fetcher: Fetcher, source: SourceConfig, entry: FeedEntry) -> Read:
        """The item's page fetched and extracted, or the feed's own text when there is no page, it
        cannot be read, or it gives less than the feed."""
        fallback = feed_text(entry, entry.language or source.language)
        if entry.unresolved:
            # An aggregator link not resolved yet: its page is the aggregator's, not the article.
            return Read(prepare(fallback), page_failed=True, error="aggregator link not resolved")
        if not entry.link or not entry.read_page:
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
        kept = text_to_keep(entry, entry.language or source.language, prepared.article)
        if kept is not None:
            return Read(prepare(kept))
        if self.archive is None:
            return Read(prepared)
        # Matched here, once, to know whether the page is evidence; storing reuses the result.
        title = entry.title or prepared.article.title or ""
        matches = tuple(self.matcher.match(title, prepared.article.text, context=entry.summary))
        return Read(prepared, response=result if matches else None, matches=matches)

    # -- storing -----------------------------------------------------------------------------

    # -- source state ------------------------------------------------------------------------

    def _success(
        self,
        source: SourceConfig,
        started: datetime,
        hints: Hints,
        result: FetchResult | None = None,
        items: int = 0,
        keep_validators: bool = False,
    ) -> None:
        """Record a poll that answered; the next one is due when the source's schedule says.
        Called after the poll is logged, so the observed rate counts this poll."""
        recent = self.store.recent_new(source.name, QUIET_POLLS)
        due, reason = next_poll(source.name, started, source.interval, source.bounds, hints, recent)
        self.store.record_source_success(
            source.name,
            now=started,
            next_check_at=due,
            etag=result.etag if result else None,
            last_modified=result.last_modified if result else None,
            items=items,
            reason=reason,
            keep_validators=keep_validators or result is None,
        )

    def _failure(self, source: SourceConfig, errors: int, started: datetime, exc: SourceError) -> SourceReport:
        wait = retry_wait(source.interval, errors, exc.retry_after_s)
        kind = "fetch" if isinstance(exc, FetchError) else "parse" if isinstance(exc, ParseError) else "source"
        message = f"{kind}: {exc.message}"
        log.warning("source_failed source=%s error=%s retry_in_s=%s", source.name, message, int(wait.total_seconds()))
        with self.store.transaction():
            self.store.record_source_failure(
                source.name,
                now=started,
                next_check_at=started + wait,
                error=message,
                reason=f"{describe(wait)}: retry after {exc.retry_after_s:g}s asked"
                if exc.retry_after_s is not None and wait.total_seconds() <= exc.retry_after_s
                else f"{describe(wait)}: back-off after {errors + 1} failure{'s' if errors else ''}",
            )
            self.store.log_poll(source.name, started, self.clock(), False, 0, 0, message)
        return SourceReport(source.name, ok=False, error=message)
