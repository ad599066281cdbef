"""Storing one source's items as the decisions say, inside the poll's transaction for that source:
a copy by URL, a new article (unless decide finds it a duplicate of a stored one), or a revision;
then the alert rule's plan for what was matched, and the page kept as evidence."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from d24watch.alerts import AlertPlan, Occasion, plan_alerts
from d24watch.channels import ChannelConfig
from d24watch.config import SourceConfig
from d24watch.decide import (
    DuplicateOf,
    Intent,
    boilerplate,
    copy_candidates,
    duplicate_of,
    original_first,
    page_canonical,
    revision_reason,
)
from d24watch.dedupe import Signature, compared_signature, site_of
from d24watch.evidence import Archive, archive_response
from d24watch.match import Matcher
from d24watch.models import EntityMatch, FetchResult, SourceReport
from d24watch.prepare import Prepared
from d24watch.store import Store, iso
from d24watch.store.rows import NewArticle

BLOCK_WINDOW = timedelta(days=60)  # how far back a site's recurring blocks are counted


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
    events: int = 0  # article events queued (a watched page that stopped naming someone)

    @property
    def queued(self) -> bool:
        """Whether anything was queued for delivery."""
        return bool(self.entities or self.events)

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


class Ingest:
    def __init__(
        self,
        store: Store,
        matcher: Matcher,
        channels: tuple[ChannelConfig, ...],
        *,
        threshold: float,
        recheck: tuple[timedelta, ...],
        archive: Archive | None,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.matcher = matcher
        self.channels = channels
        self.threshold = threshold
        self.recheck = recheck
        self.archive = archive
        self.clock = clock

    def apply(self, source: SourceConfig, intents: list[Intent], reads: list[Read]) -> Outcome:
        """Store every intent; `reads` are the pages read for the intents that are not copies, in
        order. New items first (the original of several copies first of all), then revisions, then
        copies by URL. Must run inside the store's transaction."""
        outcome = Outcome()
        given = iter(reads)
        read_for = [(intent, next(given) if intent.action != "duplicate" else None) for intent in intents]
        new = [(i, r) for i, r in read_for if i.action == "new" and r is not None]
        self._store_news(source, new, outcome)
        for intent, maybe in read_for:
            if intent.action == "revise" and maybe is not None:
                self._store_revision(intent, maybe, outcome)
        for intent, _ in read_for:
            if intent.action == "duplicate":
                self._store_copy(source, intent, outcome)
        return outcome

    def _store_news(self, source: SourceConfig, new: list[tuple[Intent, Read]], outcome: Outcome) -> None:
        order = original_first([(i.candidate.entry, i.candidate.url, r.prepared.article) for i, r in new])
        # A site's recurring blocks are also learnt from the pages of this batch not yet stored, each
        # distinct text once (copies of one page are not a site's template).
        blocks = [[key for key, _ in r.prepared.blocks] for _, r in new]
        unstored: dict[str, Counter[int]] = {}
        texts: dict[str, int] = {}
        for position, (intent, read) in enumerate(new):
            if texts.setdefault(read.prepared.text_hash, position) == position:
                unstored.setdefault(site_of(intent.candidate.url), Counter()).update(blocks[position])
        for position in order:
            intent, read = new[position]
            site_pages = unstored[site_of(intent.candidate.url)]
            self._store_new(source, intent, read, outcome, blocks[position], site_pages)
            if texts.pop(read.prepared.text_hash, None) is not None:
                site_pages.subtract(blocks[position])

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
            language=(article.language if article else None) or entry.language or source.language,
            text=article.text if article else "",
            text_hash=read.prepared.text_hash if read else "",
            duplicate_of=copy.article_id if copy else None,
            duplicate_reason=copy.reason if copy else None,
            page_pending=bool(read and read.page_failed) and copy is None,
            updated_marker=entry.updated_marker,
            via=entry.via,
            publisher=entry.publisher,
            links=json.dumps(list(entry.links), ensure_ascii=False) if entry.links else None,
        )

    def _store_copy(self, source: SourceConfig, intent: Intent, outcome: Outcome) -> None:
        """A copy by URL: of a stored original, or of an item stored earlier in this batch."""
        original = intent.known or self.store.by_canonical(intent.candidate.canonical)
        if original is None:
            return
        row = self._article(source, intent, None, intent.candidate.canonical, DuplicateOf(original.id, "url"))
        self.store.insert_article(row, None)
        outcome.duplicates += 1

    def _store_new(
        self,
        source: SourceConfig,
        intent: Intent,
        read: Read,
        outcome: Outcome,
        blocks: list[int],
        batch_blocks: Counter[int],
    ) -> None:
        prepared = read.prepared
        canonical = page_canonical(intent.candidate.canonical, prepared.article.canonical_url)
        host, now = site_of(intent.candidate.url), self.clock()
        site = boilerplate(blocks, self.store.block_pages(host, blocks, now - BLOCK_WINDOW), batch_blocks)
        sig = compared_signature(
            Signature.from_bytes(prepared.signature, prepared.shingles),
            prepared.article.text,
            prepared.blocks,
            site,
            prepared.folded.count(" ") + 1,
        )
        title = intent.candidate.entry.title or prepared.article.title or ""
        candidates = copy_candidates(
            by_canonical=self.store.by_canonical(canonical) if canonical != intent.candidate.canonical else None,
            by_hash=self.store.by_text_hash(prepared.text_hash),
            near=self.store.near_candidates(sig),
            sig=sig,
            text=prepared.article.text,
            threshold=self.threshold,
        )
        matches = self._matches(read, title, intent.candidate.entry.summary)
        if candidates:
            names = frozenset(m.entity_id for m in matches)
            named = {c.article_id: self.store.entities_of(c.article_id) for c in candidates}
            copy = duplicate_of(candidates, names, named)
            if copy is not None:
                self.store.insert_article(self._article(source, intent, read, canonical, copy), None)
                outcome.duplicates += 1
                return
        row = self._article(source, intent, read, canonical)
        article_id = self.store.insert_article(row, sig, prepared.folded)
        self.store.count_blocks(host, blocks, now)
        outcome.new += 1
        self._alert("new", article_id, 1, matches, frozenset(), outcome, read, "alert")

    def _store_revision(self, intent: Intent, read: Read, outcome: Outcome) -> None:
        known, prepared, entry = intent.known, read.prepared, intent.candidate.entry
        assert known is not None
        if entry.via is not None and not entry.unresolved:
            # Stored under its aggregator link when that could not be resolved; now it can.
            canonical = page_canonical(intent.candidate.canonical, prepared.article.canonical_url)
            other = self.store.by_canonical(canonical)
            if (
                other is not None
                and other.id != known.id
                and self.store.entities_of(known.id) <= self.store.entities_of(other.id)
            ):
                # The publisher's own feed brought it already: one article, this one its copy.
                self.store.fold_into(
                    known.id, other.id, url=intent.candidate.url, canonical_url=canonical, via=entry.via
                )
                outcome.duplicates += 1
                return
            self.store.relink_article(known.id, url=intent.candidate.url, canonical_url=canonical, via=entry.via)
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
        self._alert(
            "revision", known.id, revision, self._matches(read, title, entry.summary), had, outcome, read, "revision"
        )

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

    def _matches(self, read: Read, title: str, feed_text: str) -> list[EntityMatch]:
        """The entities the stored title and text name; the feed's own summary may supply context."""
        if read.matches is not None:
            return list(read.matches)
        return self.matcher.match(title, read.prepared.article.text, context=feed_text)

    def _keep_evidence(self, article_id: int, response: FetchResult | None, reason: str) -> None:
        """The page as received goes into the WARC archive, and the article gets its re-checks."""
        now = self.clock()
        if self.archive is not None and response is not None:
            archive_response(self.store, self.archive, article_id, response, reason, now)
        self.store.schedule_rechecks(article_id, [now + delay for delay in self.recheck])
