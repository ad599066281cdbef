"""Evidence: where each archived response lies in the WARC files, the re-check schedule of
articles with hits, and the events (changed, removed) that re-checks and watched pages find."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from d24watch.custody import entry_hash, genesis
from d24watch.models import Snapshot
from d24watch.store.base import Base, in_transaction, iso, own_transaction, parse_iso, reads
from d24watch.store.rows import EventRow, EvidenceRow

_EVIDENCE = (
    "SELECT id, article_id, url, fetched_at, status, sha256, reason, warc_file, warc_offset, warc_length, "
    "record_id, record_sha256, tsa_token, tsa_time, tsa_error FROM evidence"
)


class EvidenceStore(Base):
    @in_transaction
    def add_evidence(
        self, article_id: int, url: str, fetched_at: datetime, status: int, reason: str, snap: Snapshot
    ) -> int:
        """Record an archived record and log its capture; its id."""
        cursor = self.conn.execute(
            "INSERT INTO evidence(article_id, url, fetched_at, status, sha256, reason, warc_file, warc_offset, "
            "warc_length, record_id, record_sha256) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                article_id,
                url,
                iso(fetched_at),
                status,
                snap.sha256,
                reason,
                snap.warc_file,
                snap.offset,
                snap.length,
                snap.record_id or None,
                snap.record_sha256 or None,
            ),
        )
        self.add_custody(
            article_id,
            "captured",
            {
                "url": url,
                "status": status,
                "reason": reason,
                "record_id": snap.record_id,
                "record_sha256": snap.record_sha256,
                "warc_file": snap.warc_file,
                "offset": snap.offset,
                "length": snap.length,
            },
            fetched_at,
        )
        return int(cursor.lastrowid or 0)

    @reads
    def evidence_of(self, article_id: int) -> list[EvidenceRow]:
        return [
            EvidenceRow(**r)
            for r in self.db.query(
                f"{_EVIDENCE} WHERE article_id = ? ORDER BY id",
                [article_id],
            )
        ]

    # -- timestamps ----------------------------------------------------------------------------

    @reads
    def unstamped(self, limit: int = 100) -> list[EvidenceRow]:
        """Records without a timestamp token yet, oldest first."""
        return [
            EvidenceRow(**r)
            for r in self.db.query(
                f"{_EVIDENCE} WHERE tsa_token IS NULL AND record_sha256 IS NOT NULL ORDER BY id LIMIT ?",
                [limit],
            )
        ]

    @own_transaction
    def add_timestamp(self, evidence_id: int, token: bytes, gen_time: str, now: datetime) -> None:
        row = self.conn.execute(
            "SELECT article_id, record_id, record_sha256 FROM evidence WHERE id = ?", (evidence_id,)
        ).fetchone()
        self.conn.execute(
            "UPDATE evidence SET tsa_token = ?, tsa_time = ?, tsa_error = NULL WHERE id = ?",
            (token, gen_time, evidence_id),
        )
        self.add_custody(
            int(row[0]),
            "timestamped",
            {
                "record_id": row[1],
                "record_sha256": row[2],
                "tsa_time": gen_time,
                "token_sha256": hashlib.sha256(token).hexdigest(),
            },
            now,
        )

    @own_transaction
    def timestamp_failed(self, evidence_id: int, error: str) -> None:
        self.conn.execute(
            "UPDATE evidence SET tsa_attempts = tsa_attempts + 1, tsa_error = ? WHERE id = ?",
            (error[:500], evidence_id),
        )

    @reads
    def timestamp_counts(self) -> tuple[int, int]:
        """(records with a token, records waiting for one)."""
        row = self.conn.execute(
            "SELECT sum(tsa_token IS NOT NULL), sum(tsa_token IS NULL AND record_sha256 IS NOT NULL) FROM evidence"
        ).fetchone()
        return int(row[0] or 0), int(row[1] or 0)

    # -- custody -------------------------------------------------------------------------------

    @in_transaction
    def add_custody(self, article_id: int, action: str, detail: dict[str, Any], now: datetime) -> None:
        """Append to the article's custody chain."""
        last = self.conn.execute(
            "SELECT hash FROM custody WHERE article_id = ? ORDER BY id DESC LIMIT 1", (article_id,)
        ).fetchone()
        if last is not None:
            prev = str(last[0])
        else:
            url = self.conn.execute("SELECT canonical_url FROM articles WHERE id = ?", (article_id,)).fetchone()
            prev = genesis(str(url[0]) if url else "")
        at = iso(now) or ""
        self.conn.execute(
            "INSERT INTO custody(article_id, action, detail, at, prev_hash, hash) VALUES (?,?,?,?,?,?)",
            (
                article_id,
                action,
                json.dumps(detail, ensure_ascii=False, sort_keys=True),
                at,
                prev,
                entry_hash(prev, action, at, detail),
            ),
        )

    @reads
    def custody_of(self, article_id: int) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT action, detail, at, prev_hash, hash FROM custody WHERE article_id = ? ORDER BY id", (article_id,)
        ).fetchall()
        return [{"action": a, "at": at, "detail": json.loads(d), "prev_hash": p, "hash": h} for a, d, at, p, h in rows]

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
