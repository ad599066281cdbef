"""Re-checking articles with hits on their schedule ([evidence] recheck): fetch each again, ask
decide whether it was taken down, and store what happened: an edit becomes a revision and a
`changed` event with a short diff, a takedown a `removed` event; the alert rule queues each event
once. Every answer is kept in the WARC archive, the 404 or the redirect that proves a takedown
included, and the event names the record; each re-check is a custody entry."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from d24watch.alerts import Occasion, plan_alerts
from d24watch.config import Config
from d24watch.decide import GONE, takedown_reason
from d24watch.dedupe import Signature
from d24watch.errors import FetchError, SourceError
from d24watch.evidence import Archive, archive_response
from d24watch.extract import extract_and_prepare
from d24watch.fetch import PAGE_ACCEPT, Fetcher
from d24watch.match import Matcher
from d24watch.models import EntityMatch, EventRef, FetchResult
from d24watch.store import Store
from d24watch.store.rows import Article
from d24watch.text import short_diff
from d24watch.workers import Workers

log = logging.getLogger(__name__)

GIVE_UP_AFTER = timedelta(days=3)  # a check that keeps failing (a 500, a dead host) is dropped after this
Outcome = Literal["unchanged", "changed", "removed", "failed"]


@dataclass
class RecheckReport:
    checked: int = 0
    unchanged: int = 0
    changed: int = 0
    removed: int = 0
    failed: int = 0

    def count(self, outcome: Outcome) -> None:
        self.checked += 1
        setattr(self, outcome, getattr(self, outcome) + 1)


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
            report.count(outcome)
            if outcome in ("changed", "removed") and self.on_queued is not None:
                self.on_queued()
        return report

    async def check(self, fetcher: Fetcher, article_id: int) -> Outcome:
        row = self.store.article(article_id)
        now = self.clock()
        if row is None or not row.url.startswith(("http://", "https://")) or "#item-" in row.url:
            with self.store.transaction():
                self.store.finish_rechecks(article_id, now, "no page", all_remaining=True)
            return "unchanged"
        try:
            # An error status comes back as an answer, so the 404 that proves a takedown is kept.
            result = await fetcher.get(row.url, accept=PAGE_ACCEPT, keep_errors=True)
        except FetchError as exc:
            return self._failed(article_id, exc.message)
        if result.status in GONE:
            return self._removed(row, result, f"HTTP {result.status}", result.status)
        if result.status >= 400:
            with self.store.transaction():
                self._keep(article_id, result, f"recheck: HTTP {result.status}", now)
            return self._failed(article_id, f"HTTP {result.status}")
        reason = takedown_reason(row.url, result.url, None)
        if reason is not None:
            return self._removed(row, result, reason, result.status)
        try:
            prepared = await self.workers.run(row.url, extract_and_prepare, result.body, result.charset, False)
        except SourceError as exc:
            return self._failed(article_id, exc.message)
        text = prepared.article.text
        reason = takedown_reason(row.url, result.url, text)
        if reason is not None:
            return self._removed(row, result, reason, result.status)
        if prepared.text_hash == row.text_hash:
            with self.store.transaction():
                record = self._keep(article_id, result, "recheck", now)
                self.store.add_custody(article_id, "re-checked", {"outcome": "unchanged", "record_id": record}, now)
                self.store.finish_rechecks(article_id, now, "unchanged")
            return "unchanged"
        with self.store.transaction():
            revision = self.store.add_revision(
                article_id,
                title=row.title,
                text=text,
                digest=prepared.text_hash,
                fetched_at=now,
                reason="recheck",
                sig=Signature.from_bytes(prepared.signature, prepared.shingles),
                page_pending=False,
                updated_marker=row.updated_marker,
                folded=prepared.folded,
            )
            matches = self.matcher.match(row.title, text)
            had = self.store.entities_of(article_id)
            named = {m.entity_id for m in matches}
            record = self._keep(article_id, result, "changed", now)
            detail = {
                "revision": revision,
                "diff": short_diff(row.text, text),
                "entities_gone": sorted(had - named),
                "record_id": record,
            }
            self._event("changed", row, revision, detail, matches, had, now)
            self.store.add_custody(article_id, "changed", {"revision": revision, "record_id": record}, now)
            self.store.finish_rechecks(article_id, now, "changed")
        log.info("article_changed url=%s revision=%d", row.url, revision)
        return "changed"

    def _removed(self, row: Article, result: FetchResult | None, reason: str, status: int) -> Outcome:
        now = self.clock()
        with self.store.transaction():
            record = self._keep(row.id, result, "removed", now) if result is not None else None
            detail = {
                "reason": reason,
                "status": status,
                "final_url": result.url if result else None,
                "record_id": record,
            }
            had = self.store.entities_of(row.id)
            self._event("removed", row, row.revision, detail, [], had, now)
            self.store.add_custody(row.id, "removed", {"reason": reason, "status": status, "record_id": record}, now)
            self.store.finish_rechecks(row.id, now, "removed", all_remaining=True)
        log.info("article_removed url=%s reason=%s", row.url, reason)
        return "removed"

    def _failed(self, article_id: int, message: str) -> Outcome:
        now = self.clock()
        first_due = self.store.first_due_recheck(article_id)
        log.info("recheck_failed article=%d error=%s", article_id, message)
        if first_due is not None and first_due + GIVE_UP_AFTER < now:
            with self.store.transaction():
                self.store.finish_rechecks(article_id, now, f"failed: {message}"[:200])
        return "failed"

    def _event(
        self,
        kind: Literal["changed", "removed"],
        row: Article,
        revision: int,
        detail: dict[str, Any],
        matches: list[EntityMatch],
        had: frozenset[str],
        now: datetime,
    ) -> None:
        """The event, and what the alert rule queues for it (hits of a changed text included)."""
        event_id = self.store.add_event(row.id, kind, revision, detail, now)
        occasion: Occasion = kind
        plan = plan_alerts(
            occasion,
            article_id=row.id,
            matches=matches,
            had=had,
            channels=self.config.channels,
            watchlist=self.matcher.watchlist,
            event=EventRef(kind, event_id),
            is_seed=row.source == "seed",
        )
        self.store.apply_alerts(row.id, revision, plan, now)

    def _keep(self, article_id: int, result: FetchResult, reason: str, now: datetime) -> str:
        """Archive the answer (and the redirects before it); the response record's id."""
        return archive_response(self.store, self.archive, article_id, result, reason, now).record_id
