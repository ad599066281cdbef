"""The outbox and the digest queue: deliveries leased while one process sends them, their payload
saved at the first attempt, their outcome; digest lines gathered into one delivery per digest.
Nothing is removed: done is a status."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from d24watch.models import EventRef
from d24watch.store.base import Base, iso, own_transaction, reads
from d24watch.store.rows import DeliveryCounts, DigestLine, FailingDelivery, OutboxRow

DIGEST = "digest"  # the outbox event of a digest delivery


# A mention marked not relevant leaves every digest not yet sent.
_KEPT = (
    "NOT EXISTS (SELECT 1 FROM triage t WHERE t.article_id = dq.article_id AND t.entity_id = dq.entity_id "
    "AND t.verdict = 'not-relevant')"
)


def _outbox_row(row: dict[str, Any]) -> OutboxRow:
    event = None if row["event"] == DIGEST else EventRef.from_key(row["event"])
    return OutboxRow(
        id=int(row["id"]),
        delivery_id=row["delivery_id"],
        channel=row["channel"],
        event=event,
        article_id=row["article_id"],
        entities=tuple(json.loads(row["entities"])),
        attempts=int(row["attempts"]),
        created_at=row["created_at"],
        payload=row["payload"],
    )


def _digest_line(row: dict[str, Any]) -> DigestLine:
    return DigestLine(int(row["article_id"]), row["entity_id"], EventRef.from_key(row["event"]), row["created_at"])


class OutboxStore(Base):
    @own_transaction
    def claim_deliveries(
        self,
        now: datetime,
        channels: Iterable[str],
        *,
        lease: timedelta,
        due_only: bool = True,
        digests_only: bool = False,
    ) -> list[OutboxRow]:
        """Pending deliveries of `channels` (due ones only, unless `due_only` is false), leased to
        this process until now + lease so that a second process never sends them at the same time.
        A lease left by a killed process runs out and the delivery is tried again."""
        names = list(channels)
        if not names:
            return []
        where = [
            "status = 'pending'",
            f"channel IN ({','.join('?' * len(names))})",
            "(lease_until IS NULL OR lease_until <= ?)",
        ]
        args: list[Any] = [*names, iso(now)]
        if due_only:
            where.append("next_attempt_at <= ?")
            args.append(iso(now))
        if digests_only:
            where.append("event = ?")
            args.append(DIGEST)
        rows = list(self.db.query(f"SELECT * FROM outbox WHERE {' AND '.join(where)} ORDER BY id", args))
        self.conn.executemany(
            "UPDATE outbox SET lease_until = ? WHERE id = ?", [(iso(now + lease), r["id"]) for r in rows]
        )
        return [_outbox_row(r) for r in rows]

    @own_transaction
    def release_delivery(self, outbox_id: int) -> None:
        self.conn.execute("UPDATE outbox SET lease_until = NULL WHERE id = ?", (outbox_id,))

    @own_transaction
    def save_payload(self, outbox_id: int, payload: str) -> None:
        """The payload as first rendered: every retry sends these bytes."""
        self.conn.execute("UPDATE outbox SET payload = ? WHERE id = ? AND payload IS NULL", (payload, outbox_id))

    @own_transaction
    def mark_delivered(self, outbox_id: int, now: datetime) -> None:
        self.conn.execute(
            "UPDATE outbox SET status = 'sent', sent_at = ?, attempts = attempts + 1, last_error = NULL, "
            "lease_until = NULL WHERE id = ?",
            (iso(now), outbox_id),
        )
        self.conn.execute(
            "UPDATE digest_queue SET digested_at = ? WHERE batch_id = ? AND digested_at IS NULL",
            (iso(now), outbox_id),
        )

    @own_transaction
    def mark_delivery_failed(self, outbox_id: int, error: str, next_attempt_at: datetime) -> None:
        self.conn.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, lease_until = NULL "
            "WHERE id = ?",
            (error[:1000], iso(next_attempt_at), outbox_id),
        )

    # -- digests -----------------------------------------------------------------------------

    @reads
    def pending_digest(self, channel: str) -> list[DigestLine]:
        """Digest lines of `channel` not yet accepted by it, oldest first."""
        return [
            _digest_line(r)
            for r in self.db.query(
                "SELECT article_id, entity_id, event, created_at FROM digest_queue dq "
                f"WHERE channel = ? AND digested_at IS NULL AND {_KEPT} ORDER BY created_at, article_id, entity_id",
                [channel],
            )
        ]

    @own_transaction
    def batch_digest(self, channel: str, delivery_id: str, now: datetime) -> int | None:
        """Gather the channel's unbatched digest lines into one pending delivery (event `digest`);
        its id, or None when there is nothing new."""
        count = self.conn.execute(
            f"SELECT count(*) FROM digest_queue dq WHERE channel = ? AND digested_at IS NULL AND batch_id IS NULL AND {_KEPT}",
            (channel,),
        ).fetchone()[0]
        if not count:
            return None
        cursor = self.conn.execute(
            "INSERT INTO outbox(delivery_id, channel, event, article_id, entities, next_attempt_at, created_at) "
            "VALUES (?, ?, ?, NULL, '[]', ?, ?)",
            (delivery_id, channel, DIGEST, iso(now), iso(now)),
        )
        batch_id = int(cursor.lastrowid or 0)
        self.conn.execute(
            "UPDATE digest_queue SET batch_id = ? WHERE channel = ? AND digested_at IS NULL AND batch_id IS NULL",
            (batch_id, channel),
        )
        return batch_id

    @reads
    def batch_lines(self, batch_id: int) -> list[DigestLine]:
        return [
            _digest_line(r)
            for r in self.db.query(
                f"SELECT article_id, entity_id, event, created_at FROM digest_queue dq WHERE batch_id = ? AND {_KEPT} "
                "ORDER BY created_at, article_id, entity_id",
                [batch_id],
            )
        ]

    # -- state -------------------------------------------------------------------------------

    @reads
    def delivery_counts(self) -> DeliveryCounts:
        row = self.conn.execute(
            "SELECT sum(status = 'sent'), sum(status = 'pending'), sum(status = 'pending' AND last_error IS NOT NULL) "
            "FROM outbox"
        ).fetchone()
        return DeliveryCounts(int(row[0] or 0), int(row[1] or 0), int(row[2] or 0))

    @reads
    def failing_deliveries(self) -> list[FailingDelivery]:
        return [
            FailingDelivery(**r)
            for r in self.db.query(
                "SELECT channel, event, attempts, last_error, next_attempt_at FROM outbox "
                "WHERE status = 'pending' AND last_error IS NOT NULL ORDER BY id"
            )
        ]
