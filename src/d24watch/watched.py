"""A page watched for removal (`watch = "removal"`), kept as one article: what it names at first
is the baseline (no alert); an entity it starts naming is a mention, one it stops naming a
`removed` event. Runs inside the poll's transaction; the alert rule decides what is queued."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from d24watch.alerts import AlertPlan, Occasion, plan_alerts
from d24watch.channels import ChannelConfig
from d24watch.config import SourceConfig
from d24watch.dedupe import Signature, canonical_url
from d24watch.evidence import Archive, archive_response
from d24watch.ingest import Outcome
from d24watch.match import Matcher
from d24watch.models import MENTION, EntityMatch, EventRef, FetchResult
from d24watch.prepare import Prepared
from d24watch.store import Store, iso
from d24watch.store.rows import NewArticle


class WatchedPage:
    def __init__(
        self,
        store: Store,
        matcher: Matcher,
        channels: tuple[ChannelConfig, ...],
        archive: Archive | None,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.matcher = matcher
        self.channels = channels
        self.archive = archive
        self.clock = clock

    def update(self, source: SourceConfig, prepared: Prepared, result: FetchResult) -> Outcome:
        """Store the page as it now reads; must run inside the store's transaction."""
        text, title = prepared.article.text, prepared.article.title or source.name
        matches = self.matcher.match(title, text)
        named = {m.entity_id for m in matches}
        now = self.clock()
        sig = Signature.from_bytes(prepared.signature, prepared.shingles)
        out = Outcome()
        known = self.store.seen_item(source.name, source.url, None)
        if known is None:
            row = NewArticle(
                source=source.name,
                url=source.url,
                canonical_url=canonical_url(source.url),
                title=title,
                fetched_at=iso(now) or "",
                language=prepared.article.language or source.language,
                text=text,
                text_hash=prepared.text_hash,
            )
            article_id = self.store.insert_article(row, sig, prepared.folded)
            plan = self._plan("baseline", article_id, matches, frozenset())
            self.store.apply_alerts(article_id, 1, plan, now)
            out.alerted(plan)
            if matches:
                self._keep(article_id, result, "baseline", now)
            out.new = 1
            return out
        if prepared.text_hash == known.text_hash:
            return out
        had = self.store.entities_of(known.id)
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
        out.revisions = 1
        mentions = self._plan("revision", known.id, matches, had)
        self.store.apply_alerts(known.id, revision, mentions, now)
        out.alerted(mentions)
        gone = sorted(had - named)
        if gone:
            labels = ", ".join(e.label for e in (self.matcher.watchlist.get(g) for g in gone) if e)
            detail = {
                "reason": f"{labels} no longer named on the page",
                "entities_gone": gone,
                "status": result.status,
                "final_url": result.url,
            }
            event_id = self.store.add_event(known.id, "removed", revision, detail, now)
            removal = self._plan("removed", known.id, matches, had, EventRef("removed", event_id))
            self.store.apply_alerts(known.id, revision, removal, now)
            self.store.forget_entities(known.id, gone)
            out.events += 1
        if gone or named - had:
            self._keep(known.id, result, "watched", now)
        return out

    def _plan(
        self,
        occasion: Occasion,
        article_id: int,
        matches: list[EntityMatch],
        had: frozenset[str],
        event: EventRef = MENTION,
    ) -> AlertPlan:
        return plan_alerts(
            occasion,
            article_id=article_id,
            matches=matches,
            had=had,
            channels=self.channels,
            watchlist=self.matcher.watchlist,
            event=event,
        )

    def _keep(self, article_id: int, result: FetchResult, reason: str, now: datetime) -> None:
        if self.archive is not None:
            archive_response(self.store, self.archive, article_id, result, reason, now)
