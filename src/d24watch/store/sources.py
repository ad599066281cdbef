"""Sources and their polling state: validators for conditional GET, when each is due, its error
count, and a bounded log of every poll attempt, success or not."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from d24watch.store.base import Base, in_transaction, iso, own_transaction, parse_iso, reads
from d24watch.store.rows import SourceRow, SourceState

POLL_LOG_KEPT = 200  # newest polls kept per source


class SourcesStore(Base):
    @own_transaction
    def sync_sources(self, sources: Iterable[tuple[str, str, str]], now: datetime) -> None:
        """Make sure every configured (name, kind, url) has a row; a changed URL starts afresh."""
        for name, kind, url in sources:
            row = self.conn.execute("SELECT url FROM sources WHERE name = ?", (name,)).fetchone()
            if row is None:
                self.conn.execute(
                    "INSERT INTO sources(name, kind, url, next_check_at) VALUES (?, ?, ?, ?)",
                    (name, kind, url, iso(now)),
                )
            elif row[0] != url:
                self.conn.execute(
                    "UPDATE sources SET url = ?, kind = ?, etag = NULL, last_modified = NULL, "
                    "next_check_at = ?, consecutive_errors = 0 WHERE name = ?",
                    (url, kind, iso(now), name),
                )
                self.conn.execute("DELETE FROM source_marks WHERE source = ?", (name,))

    @reads
    def source_state(self, name: str) -> SourceState:
        row = self.conn.execute(
            "SELECT etag, last_modified, next_check_at, consecutive_errors FROM sources WHERE name = ?",
            (name,),
        ).fetchone()
        if row is None:
            return SourceState(name, None, None, None, 0)
        return SourceState(name, row[0], row[1], parse_iso(row[2]), int(row[3]))

    @reads
    def due_sources(self, names: Iterable[str], now: datetime) -> list[str]:
        wanted = list(names)
        if not wanted:
            return []
        marks = ",".join("?" * len(wanted))
        rows = self.conn.execute(
            f"SELECT name FROM sources WHERE name IN ({marks}) AND (next_check_at IS NULL OR next_check_at <= ?) "
            "ORDER BY next_check_at",
            (*wanted, iso(now)),
        ).fetchall()
        return [str(r[0]) for r in rows]

    @in_transaction
    def record_source_success(
        self,
        name: str,
        *,
        now: datetime,
        next_check_at: datetime,
        etag: str | None,
        last_modified: str | None,
        items: int,
        reason: str | None = None,
        keep_validators: bool = False,
    ) -> None:
        if keep_validators:
            self.conn.execute(
                "UPDATE sources SET last_polled_at = ?, last_success_at = ?, next_check_at = ?, next_reason = ?, "
                "consecutive_errors = 0, polls = polls + 1 WHERE name = ?",
                (iso(now), iso(now), iso(next_check_at), reason, name),
            )
        else:
            self.conn.execute(
                "UPDATE sources SET last_polled_at = ?, last_success_at = ?, next_check_at = ?, next_reason = ?, "
                "etag = ?, last_modified = ?, consecutive_errors = 0, items_seen = items_seen + ?, "
                "polls = polls + 1 WHERE name = ?",
                (iso(now), iso(now), iso(next_check_at), reason, etag, last_modified, items, name),
            )

    @in_transaction
    def count_resolutions(self, name: str, *, resolved: int, unresolved: int) -> None:
        """Aggregator links of one poll resolved to the publisher's, and not (yet)."""
        self.conn.execute(
            "UPDATE sources SET resolved = resolved + ?, unresolved = unresolved + ? WHERE name = ?",
            (resolved, unresolved, name),
        )

    @reads
    def last_success(self, name: str) -> datetime | None:
        row = self.conn.execute("SELECT last_success_at FROM sources WHERE name = ?", (name,)).fetchone()
        return parse_iso(row[0]) if row and row[0] else None

    @reads
    def recent_new(self, name: str, polls: int) -> list[int]:
        """New articles of the source's latest successful polls, newest first."""
        rows = self.conn.execute(
            "SELECT new FROM poll_log WHERE source = ? AND ok = 1 ORDER BY id DESC LIMIT ?", (name, polls)
        ).fetchall()
        return [int(r[0]) for r in rows]

    @reads
    def marks(self, name: str) -> dict[str, str]:
        """What a sitemap or channel source was last read up to, by key."""
        rows = self.conn.execute("SELECT key, value FROM source_marks WHERE source = ?", (name,)).fetchall()
        return {str(k): str(v) for k, v in rows}

    @in_transaction
    def set_marks(self, name: str, marks: dict[str, str]) -> None:
        self.conn.executemany(
            "INSERT OR REPLACE INTO source_marks(source, key, value) VALUES (?, ?, ?)",
            [(name, key, value) for key, value in marks.items()],
        )

    @in_transaction
    def record_source_failure(
        self, name: str, *, now: datetime, next_check_at: datetime, error: str, reason: str | None = None
    ) -> None:
        self.conn.execute(
            "UPDATE sources SET last_polled_at = ?, next_check_at = ?, next_reason = ?, "
            "consecutive_errors = consecutive_errors + 1, last_error = ?, last_error_at = ?, polls = polls + 1, "
            "errors = errors + 1 WHERE name = ?",
            (iso(now), iso(next_check_at), reason, error[:1000], iso(now), name),
        )

    @in_transaction
    def log_poll(
        self,
        name: str,
        started: datetime,
        finished: datetime,
        ok: bool,
        new: int,
        dups: int,
        error: str | None,
    ) -> None:
        self.conn.execute(
            "INSERT INTO poll_log(source, started_at, finished_at, ok, new, duplicates, error) VALUES (?,?,?,?,?,?,?)",
            (name, iso(started), iso(finished), int(ok), new, dups, error),
        )
        self.conn.execute(
            "DELETE FROM poll_log WHERE source = ? AND id NOT IN "
            "(SELECT id FROM poll_log WHERE source = ? ORDER BY id DESC LIMIT ?)",
            (name, name, POLL_LOG_KEPT),
        )

    @reads
    def source_rows(self) -> list[SourceRow]:
        return [SourceRow.of(r) for r in self.db.query("SELECT * FROM sources ORDER BY name")]
