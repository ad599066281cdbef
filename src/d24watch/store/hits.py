"""Hits and the entities each article names, and applying an alert plan: the hits it records and
the deliveries and digest lines it queues, all in the caller's transaction, so an alert is queued
exactly when its hits are stored."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

from d24watch.alerts import AlertPlan
from d24watch.store.base import Base, in_transaction, iso, reads
from d24watch.store.rows import StoredHit


class HitsStore(Base):
    @reads
    def entities_of(self, article_id: int) -> frozenset[str]:
        rows = self.conn.execute("SELECT entity_id FROM article_entities WHERE article_id = ?", (article_id,))
        return frozenset(str(r[0]) for r in rows)

    @in_transaction
    def apply_alerts(self, article_id: int, revision: int, plan: AlertPlan, now: datetime) -> None:
        """Record the plan's hits at `revision` and queue its deliveries and digest lines."""
        at = iso(now)
        for match in plan.hits:
            self.conn.execute(
                "INSERT OR IGNORE INTO article_entities(article_id, entity_id, first_seen_at, revision) "
                "VALUES (?,?,?,?)",
                (article_id, match.entity_id, at, revision),
            )
            self.conn.executemany(
                'INSERT INTO hits(article_id, revision, entity_id, field, text, start, "end", snippet, found_at) '
                "VALUES (?,?,?,?,?,?,?,?,?)",
                [
                    (article_id, revision, match.entity_id, h.field, h.text, h.start, h.end, h.snippet, at)
                    for h in match.hits
                ],
            )
        for delivery in plan.deliveries:
            self.conn.execute(
                "INSERT OR IGNORE INTO outbox(delivery_id, channel, event, article_id, entities, next_attempt_at, "
                "created_at) VALUES (?,?,?,?,?,?,?)",
                (
                    delivery.delivery_id,
                    delivery.channel,
                    delivery.event.key,
                    article_id,
                    json.dumps(list(delivery.entity_ids)),
                    at,
                    at,
                ),
            )
        self.conn.executemany(
            "INSERT OR IGNORE INTO digest_queue(channel, article_id, entity_id, event, created_at) VALUES (?,?,?,?,?)",
            [(line.channel, article_id, line.entity_id, line.event.key, at) for line in plan.digest],
        )

    @in_transaction
    def forget_entities(self, article_id: int, entity_ids: Iterable[str]) -> None:
        """The page no longer names them: a later mention is news again."""
        self.conn.executemany(
            "DELETE FROM article_entities WHERE article_id = ? AND entity_id = ?",
            [(article_id, e) for e in entity_ids],
        )

    @reads
    def hits_for(self, article_id: int, entity_ids: Iterable[str] | None = None) -> dict[str, list[StoredHit]]:
        """The hits of the article's latest revision that has hits, per entity."""
        rows = self.conn.execute(
            'SELECT entity_id, field, text, start, "end", snippet, revision FROM hits WHERE article_id = ? '
            "ORDER BY entity_id, revision DESC, start",
            (article_id,),
        )
        wanted = set(entity_ids) if entity_ids is not None else None
        out: dict[str, list[StoredHit]] = {}
        newest: dict[str, int] = {}
        for entity, field, text, start, end, snippet, revision in rows:
            if wanted is not None and entity not in wanted:
                continue
            if newest.setdefault(entity, revision) != revision:
                continue
            out.setdefault(entity, []).append(StoredHit(entity, field, text, start, end, snippet, revision))
        return out
