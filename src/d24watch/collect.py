"""What a source lists, by its kind: a feed's items (their aggregator links resolved to the
publisher's), a listing page's article links, a sitemap's new pages (through robots.txt and
sitemap indexes), a Telegram channel's new posts. Every request goes through the poll's fetcher
(its address guard, caps and limits), every document is parsed in a worker, and what the source
says of its own schedule comes back with the items."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from urllib.parse import urljoin, urlsplit

from d24watch.aggregator import (
    article_id,
    batch_answer,
    batch_request,
    batch_url,
    decode_id,
    interstitial_params,
    plain_title,
)
from d24watch.config import Config, SourceConfig
from d24watch.decide import Hints, cache_hints
from d24watch.errors import FetchError, ParseError, SourceError
from d24watch.fetch import PAGE_ACCEPT, Fetcher
from d24watch.models import FeedEntry, FetchResult
from d24watch.parse import article_links, looks_like_feed, parse_feed
from d24watch.sitemaps import Sitemap, parse_sitemap, robots_sitemaps
from d24watch.store import Store
from d24watch.store.rows import SourceState
from d24watch.telegram import ChannelPage, before_url, parse_channel, post_entries
from d24watch.workers import Workers

log = logging.getLogger(__name__)

SITEMAP_ACCEPT = "application/xml, text/xml, application/x-gzip, */*;q=0.8"
CHILDREN_PER_POLL = 10  # child sitemaps of an index read in one poll, newest first
INDEX_DEPTH = 2  # an index of indexes is followed; deeper nesting is not
SINCE_SLACK = timedelta(days=1)  # pages dated this long before the last poll are looked at again
CHANNEL_PAGES = 20  # preview pages read in one poll (about 20 posts each)
RESOLVE_PER_POLL = 50  # aggregator links looked up in one poll; the rest wait for the next


@dataclass
class Listing:
    """What one poll of a source found: its items, what it says of its schedule, what to remember."""

    entries: list[FeedEntry]
    hints: Hints = field(default_factory=Hints)
    marks: dict[str, str] = field(default_factory=dict)
    resolved: int = 0
    unresolved: int = 0


def root_url(url: str) -> bool:
    """Whether a sitemap source names a site rather than a sitemap: its sitemaps are then read
    from robots.txt."""
    parts = urlsplit(url)
    return parts.path in ("", "/") and not parts.query


def first_url(source: SourceConfig) -> str:
    """The document a poll of `source` asks for first."""
    if source.kind == "sitemap" and root_url(source.url):
        return urljoin(source.url, "/robots.txt")
    return source.url


FEED_ACCEPT = "application/rss+xml, application/atom+xml, application/feed+json, application/xml;q=0.9, */*;q=0.8"
ACCEPT = {"feed": FEED_ACCEPT, "sitemap": SITEMAP_ACCEPT}


class Collector:
    def __init__(self, config: Config, store: Store, workers: Workers, clock: Callable[[], datetime]) -> None:
        self.config = config
        self.store = store
        self.workers = workers
        self.clock = clock
        self.limit = config.fetch.max_items_per_source
        # One lookup at a time per aggregator host, a polite gap apart, across all its sources.
        self._aggregator_slots: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._aggregator_last: dict[str, float] = {}

    async def first(self, fetcher: Fetcher, source: SourceConfig, state: SourceState) -> FetchResult:
        """The source's first document, conditionally when the source sent validators before. A
        site named as a sitemap source is asked for its robots.txt, and one without is read from
        its /sitemap.xml."""
        if source.kind == "sitemap" and root_url(source.url):
            robots = first_url(source)
            try:
                return await fetcher.get(robots, trusted=True, accept="text/plain, */*;q=0.5")
            except FetchError as exc:
                if exc.status in (404, 410):
                    return FetchResult(robots, exc.status, {}, b"")
                raise
        return await fetcher.get(
            source.url,
            etag=state.etag,
            last_modified=state.last_modified,
            trusted=True,
            accept=ACCEPT.get(source.kind, PAGE_ACCEPT),
        )

    async def listing(self, fetcher: Fetcher, source: SourceConfig, result: FetchResult) -> Listing:
        """The items of a source whose first document is `result`."""
        http = cache_hints(result.headers, self.clock())
        if source.kind == "sitemap":
            listing = await self._sitemap(fetcher, source, result)
        elif source.kind == "telegram":
            listing = await self._telegram(fetcher, source, result)
        elif source.kind == "feed" or looks_like_feed(result.body):
            parsed = await self.workers.run(source.url, parse_feed, result.body, result.url, result.content_type)
            listing = Listing(
                list(parsed.entries)[: self.limit], Hints(ttl_s=parsed.ttl_s, update_period_s=parsed.update_period_s)
            )
            if source.aggregator is not None:
                await self._resolve(fetcher, source, listing)
        else:
            links = await self.workers.run(source.url, article_links, result.body, result.url)
            entries = [FeedEntry(None, link, text, "", None, None) for link, text in links]
            listing = Listing(entries[: self.limit])
        listing.hints = replace(listing.hints, max_age_s=http.max_age_s, expires_s=http.expires_s)
        return listing

    # -- sitemaps ------------------------------------------------------------------------------

    async def _sitemap(self, fetcher: Fetcher, source: SourceConfig, result: FetchResult) -> Listing:
        marks = self.store.marks(source.name)
        last = self.store.last_success(source.name)
        since = last - SINCE_SLACK if last is not None else None
        listing = Listing([])
        if root_url(source.url):
            found = robots_sitemaps(result.body, result.url) if result.status == 200 else []
            tops = found or [urljoin(source.url, "/sitemap.xml")]
            documents: list[tuple[str, FetchResult | None]] = [(url, None) for url in tops]
        else:
            documents = [(source.url, result)]
        for url, given in documents:
            await self._read_sitemap(fetcher, source, url, given, since, marks, listing, depth=0)
        listing.entries.sort(key=lambda e: e.published_at.timestamp() if e.published_at else 0.0, reverse=True)
        del listing.entries[self.limit :]
        return listing

    async def _read_sitemap(
        self,
        fetcher: Fetcher,
        source: SourceConfig,
        url: str,
        given: FetchResult | None,
        since: datetime | None,
        marks: dict[str, str],
        listing: Listing,
        *,
        depth: int,
    ) -> None:
        if given is None:
            result = await fetcher.get(url, etag=marks.get(f"etag:{url}"), accept=SITEMAP_ACCEPT)
            if result.not_modified:
                return
            if result.etag:
                listing.marks[f"etag:{url}"] = result.etag
        else:
            result = given
        parsed: Sitemap = await self.workers.run(
            url, parse_sitemap, result.body, result.url, since, self.limit, self.config.fetch.max_bytes
        )
        if parsed.kind == "urlset":
            listing.entries.extend(replace(e, language=e.language or source.language) for e in parsed.entries)
            return
        if depth >= INDEX_DEPTH:
            log.info("sitemap_too_deep source=%s url=%s", source.name, url)
            return
        changed = [c for c in parsed.children if c.lastmod is None or marks.get(f"lastmod:{c.url}") != c.lastmod]
        for child in changed[:CHILDREN_PER_POLL]:
            try:
                await self._read_sitemap(fetcher, source, child.url, None, since, marks, listing, depth=depth + 1)
            except SourceError as exc:
                # One child that fails is tried again next poll; the others stand.
                log.info("sitemap_child_failed source=%s url=%s error=%s", source.name, child.url, exc.message)
                continue
            if child.lastmod is not None:
                listing.marks[f"lastmod:{child.url}"] = child.lastmod

    # -- Telegram --------------------------------------------------------------------------------

    async def _telegram(self, fetcher: Fetcher, source: SourceConfig, result: FetchResult) -> Listing:
        marks = self.store.marks(source.name)
        after = int(marks["last_post"]) if marks.get("last_post", "").isdigit() else None
        page: ChannelPage = await self.workers.run(source.url, parse_channel, result.body, result.url)
        posts = list(page.posts)
        for _ in range(CHANNEL_PAGES - 1):
            oldest = min((p.id for p in posts), default=None)
            enough = len(posts) >= self.limit if after is None else oldest is None or oldest <= after + 1
            if oldest is None or oldest <= 1 or enough:
                break
            try:
                older = await fetcher.get(before_url(source.url, oldest), accept=PAGE_ACCEPT, trusted=True)
                more: ChannelPage = await self.workers.run(source.url, parse_channel, older.body, older.url)
            except SourceError as exc:
                # The newest posts stand; the older ones are not read this time.
                log.info("channel_page_failed source=%s before=%s error=%s", source.name, oldest, exc.message)
                break
            fresh = [p for p in more.posts if p.id < oldest]
            if not fresh:
                break
            posts.extend(fresh)
        page = ChannelPage(page.title, tuple(posts))
        entries = post_entries(page, after=after, follow_links=source.follow_links, language=source.language)
        newest = max((p.id for p in posts), default=None)
        listing = Listing(entries[: self.limit])
        if newest is not None and (after is None or newest > after):
            listing.marks["last_post"] = str(newest)
        return listing

    # -- aggregator links ---------------------------------------------------------------------

    async def _resolve(self, fetcher: Fetcher, source: SourceConfig, listing: Listing) -> None:
        """Each item link of an aggregator turned into the publisher's: from the ID when it carries
        the URL, from the cache, or by asking the aggregator. An item that cannot be resolved keeps
        its aggregator link, is stored with the feed's text, and is tried again next poll."""
        asked = 0
        out: list[FeedEntry] = []
        for entry in listing.entries:
            identifier = article_id(entry.link) if entry.link else None
            if identifier is None or entry.link is None:
                out.append(entry)
                continue
            seen = self.store.seen_item(source.name, entry.link, entry.guid)
            if seen is not None and not seen.page_pending:
                out.append(entry)  # stored and settled: nothing to ask
                continue
            url = self.store.resolved_link(identifier) or decode_id(identifier)
            if url is None and asked < RESOLVE_PER_POLL:
                asked += 1
                url = await self._ask(fetcher, source, entry.link, identifier)
            if url is None:
                listing.unresolved += 1
                out.append(replace(entry, via=entry.link, read_page=False))
                continue
            self.store.remember_link(identifier, url, self.clock())
            listing.resolved += 1
            out.append(replace(entry, link=url, via=entry.link, title=plain_title(entry.title, entry.publisher)))
        listing.entries = out

    async def _ask(self, fetcher: Fetcher, source: SourceConfig, link: str, identifier: str) -> str | None:
        """The publisher's URL from the interstitial page and the decoding endpoint, or None."""
        host = urlsplit(link).netloc
        async with self._aggregator_slots[host]:
            gap = self.config.fetch.aggregator_gap_s - (time.monotonic() - self._aggregator_last.get(host, -1e9))
            if gap > 0:
                await asyncio.sleep(gap)
            try:
                page = await fetcher.get(link, accept=PAGE_ACCEPT)
                if page.url != link and article_id(page.url) is None and urlsplit(page.url).netloc != host:
                    return page.url  # the aggregator redirected to the publisher itself
                params = interstitial_params(page.body, identifier)
                if params is None:
                    raise ParseError(link, "the aggregator's page gives no decoding parameters")
                answer = await fetcher.post_form(batch_url(link), batch_request(params))
                url = batch_answer(answer.body)
                if url is None:
                    raise ParseError(link, "the aggregator's answer holds no publisher URL")
                return url
            except SourceError as exc:
                log.info("link_unresolved source=%s url=%s error=%s", source.name, link, exc.message)
                return None
            finally:
                self._aggregator_last[host] = time.monotonic()
