"""Re-checking articles with hits on their schedule ([evidence] recheck): an edit becomes a revision
and a `changed` event with a short diff; a takedown (404 or 410, a redirect to the home page, or
the text gone) a `removed` event. Each event is queued for delivery once, like a mention, and the
answer is kept in the WARC archive."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from d24watch.config import Config
from d24watch.dedupe import Signature
from d24watch.errors import FetchError, SourceError
from d24watch.evidence import Archive
from d24watch.extract import extract_and_prepare
from d24watch.fetch import Fetcher
from d24watch.match import Matcher
from d24watch.models import FetchResult
from d24watch.pipeline import charset_of, queue_deliveries
from d24watch.store import Store
from d24watch.text import short_diff
from d24watch.workers import Workers

log = logging.getLogger(__name__)

GIVE_UP_AFTER = timedelta(days=3)  # a check that keeps failing (a 500, a dead host) is dropped after this


@dataclass
class RecheckReport:
    checked: int = 0
    unchanged: int = 0
    changed: int = 0
    removed: int = 0
    failed: int = 0


def is_home_page(original: str, final: str) -> bool:
    """A redirect from an article to its site's front page (how some sites take articles down)."""
    before, after = urlsplit(original), urlsplit(final)
    return after.path in ("", "/") and before.path not in ("", "/")


class Rechecker:
    def __init__(
        self,
        config: Config,
        store: Store,
        matcher: Matcher,
        workers: Workers,
        archive: Archive,
        *,
        clock: Callable[[], datetime],
        on_queued: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.matcher = matcher
        self.workers = workers
        self.archive = archive
        self.clock = clock
        self.on_queued = on_queued

    async def run(self, fetcher: Fetcher, article_ids: list[int]) -> RecheckReport:
        report = RecheckReport()
        for article_id in article_ids:
            outcome = await self.check(fetcher, article_id)
            report.checked += 1
            setattr(report, outcome, getattr(report, outcome) + 1)
            if outcome in ("changed", "removed") and self.on_queued is not None:
                self.on_queued()
        return report

    async def check(self, fetcher: Fetcher, article_id: int) -> str:
        row = self.store.article(article_id)
        now = self.clock()
        if row is None or not str(row["url"]).startswith(("http://", "https://")) or "#item-" in row["url"]:
            with self.store.transaction():
                self.store.finish_rechecks(article_id, now, "no page", all_remaining=True)
            return "unchanged"
        url = str(row["url"])
        try:
            result = await fetcher.get(url, accept="text/html, application/xhtml+xml, */*;q=0.8")
        except FetchError as exc:
            if exc.status in (404, 410):
                return self._removed(row, None, exc.message, exc.status)
            return self._failed(article_id, exc.message)
        if is_home_page(url, result.url):
            return self._removed(row, result, f"redirected to the home page {result.url}", result.status)
        try:
            prepared = await self.workers.run(url, extract_and_prepare, result.body, charset_of(result), False)
        except SourceError as exc:
            return self._failed(article_id, exc.message)
        text = prepared.article.text
        if not text.strip():
            return self._removed(row, result, "the article's text is gone", result.status)
        if prepared.text_hash == row["text_hash"]:
            with self.store.transaction():
                self.store.finish_rechecks(article_id, now, "unchanged")
            return "unchanged"
        title = str(row["title"])
        with self.store.transaction():
            revision = self.store.add_revision(
                article_id,
                title=title,
                text=text,
                digest=prepared.text_hash,
                fetched_at=now,
                reason="recheck",
                sig=Signature.from_bytes(prepared.signature, prepared.shingles),
                page_pending=False,
                updated_marker=row["updated_marker"],
                folded=prepared.folded,
            )
            matches = self.matcher.match(title, text)
            for match in matches:
                self.store.record_hits(article_id, revision, match.entity_id, match.hits, now)
            named = {m.entity_id for m in matches}
            entities = sorted(self.store.entities_of(article_id))
            detail = {
                "revision": revision,
                "diff": short_diff(str(row["text"]), text),
                "entities_gone": [e for e in entities if e not in named],
            }
            self._event(article_id, "changed", revision, detail, entities, now)
            self._keep(article_id, result, "changed", now)
            self.store.finish_rechecks(article_id, now, "changed")
        log.info("article_changed url=%s revision=%d", url, revision)
        return "changed"

    def _removed(self, row: dict[str, object], result: FetchResult | None, reason: str, status: int) -> str:
        article_id = int(str(row["id"]))
        now = self.clock()
        with self.store.transaction():
            detail = {"reason": reason, "status": status, "final_url": result.url if result else None}
            entities = sorted(self.store.entities_of(article_id))
            self._event(article_id, "removed", int(str(row["revision"])), detail, entities, now)
            if result is not None:
                self._keep(article_id, result, "removed", now)
            self.store.finish_rechecks(article_id, now, "removed", all_remaining=True)
        log.info("article_removed url=%s reason=%s", row["url"], reason)
        return "removed"

    def _failed(self, article_id: int, message: str) -> str:
        now = self.clock()
        first_due = self.store.first_due_recheck(article_id)
        log.info("recheck_failed article=%d error=%s", article_id, message)
        if first_due is not None and first_due + GIVE_UP_AFTER < now:
            with self.store.transaction():
                self.store.finish_rechecks(article_id, now, f"failed: {message}"[:200])
        return "failed"

    def _event(
        self, article_id: int, kind: str, revision: int, detail: dict[str, object], entities: list[str], now: datetime
    ) -> None:
        event_id = self.store.add_event(article_id, kind, revision, detail, now)
        queue_deliveries(
            self.store, self.config.channels, self.matcher, article_id, entities, f"{kind}:{event_id}", now
        )

    def _keep(self, article_id: int, result: FetchResult, reason: str, now: datetime) -> None:
        snap = self.archive.keep(result, now)
        self.store.add_evidence(article_id, result.url, now, result.status, reason, snap)
