"""Evidence: where each archived response lies in the WARC files, the re-check schedule of
articles with hits, and the events (changed, removed) that re-checks and watched pages find."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from d24watch.models import Snapshot
from d24watch.store.base import Base, in_transaction, iso, parse_iso, reads
from d24watch.store.rows import EventRow, EvidenceRow


class EvidenceStore(Base):
    @in_transaction
    def add_evidence(
        self, article_id: int, url: str, fetched_at: datetime, status: int, reason: str, snap: Snapshot
    ) -> None:
        self.conn.execute(
            "INSERT INTO evidence(article_id, url, fetched_at, status, sha256, reason, warc_file, warc_offset, "
            "warc_length) VALUES (?,?,?,?,?,?,?,?,?)",
            (article_id, url, iso(fetched_at), status, snap.sha256, reason, snap.warc_file, snap.offset, snap.length),
        )

    @reads
    def evidence_of(self, article_id: int) -> list[EvidenceRow]:
        return [
            EvidenceRow(**r)
            for r in self.db.query(
                "SELECT article_id, url, fetched_at, status, sha256, reason, warc_file, warc_offset, warc_length "
                "FROM evidence WHERE article_id = ? ORDER BY id",
                [article_id],
            )
        ]

    # -- re-checks ---------------------------------------------------------------------------

    @in_transaction
    def schedule_rechecks(self, article_id: int, due: Iterable[datetime]) -> None:
        self.conn.executemany(
            "INSERT OR IGNORE INTO rechecks(article_id, due_at) VALUES (?, ?)", [(article_id, iso(d)) for d in due]
        )

    @reads
    def due_rechecks(self, now: datetime) -> list[int]:
        """Articles with a re-check due (each once, however many of its checks are due)."""
        rows = self.conn.execute(
            "SELECT DISTINCT article_id FROM rechecks WHERE done_at IS NULL AND due_at <= ? ORDER BY article_id",
            (iso(now),),
        )
        return [int(r[0]) for r in rows]

    @reads
    def first_due_recheck(self, article_id: int) -> datetime | None:
        row = self.conn.execute(
            "SELECT min(due_at) FROM rechecks WHERE article_id = ? AND done_at IS NULL", (article_id,)
        ).fetchone()
        return parse_iso(row[0]) if row else None

    @in_transaction
    def finish_rechecks(self, article_id: int, now: datetime, outcome: str, *, all_remaining: bool = False) -> None:
        """Mark the article's due checks done (or every remaining one, after a removal)."""
        where = "" if all_remaining else " AND due_at <= :now"
        self.conn.execute(
            f"UPDATE rechecks SET done_at = :now, outcome = :outcome WHERE article_id = :id AND done_at IS NULL{where}",
            {"now": iso(now), "outcome": outcome, "id": article_id},
        )

    # -- events ------------------------------------------------------------------------------

    @in_transaction
    def add_event(self, article_id: int, kind: str, revision: int, detail: dict[str, Any], now: datetime) -> int:
        cursor = self.conn.execute(
            "INSERT INTO article_events(article_id, kind, revision, detail, found_at) VALUES (?,?,?,?,?)",
            (article_id, kind, revision, json.dumps(detail, ensure_ascii=False), iso(now)),
        )
        return int(cursor.lastrowid or 0)

    @reads
    def event_detail(self, event_id: int) -> dict[str, Any]:
        row = self.conn.execute("SELECT detail FROM article_events WHERE id = ?", (event_id,)).fetchone()
        detail: dict[str, Any] = json.loads(row[0]) if row else {}
        return detail

    @reads
    def events_of(self, article_id: int) -> list[EventRow]:
        rows = self.conn.execute(
            "SELECT id, kind, revision, detail, found_at FROM article_events WHERE article_id = ? ORDER BY id",
            (article_id,),
        )
        return [EventRow(int(i), kind, int(rev), json.loads(detail), found) for i, kind, rev, detail, found in rows]
