"""Researchers' triage of mentions, and the read side of the workspace: the inbox of mentions not yet
triaged, an entity's mentions and weeks, search with filters, and the mentions the feeds carry. A
mention is one (article, entity) pair of `article_entities`; a verdict is kept per pair, and every
verdict given is logged."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from d24watch.store.base import Base, iso, own_transaction, reads
from d24watch.store.rows import Mention, SearchResult, TriageRow
from d24watch.text import folded_key

NOT_RELEVANT = "not-relevant"
RELEVANT = "relevant"
VERDICTS = (RELEVANT, NOT_RELEVANT)
REASONS = ("namesake", "another-directive", "other")

_MENTION = (
    "SELECT ae.article_id, ae.entity_id, ae.first_seen_at, a.title, a.url, a.source, a.published_at, "
    "a.fetched_at, a.language, t.verdict, t.reason, t.note, "
    "(SELECT count(*) FROM articles c WHERE c.duplicate_of = a.id) AS copies "
    # CROSS JOIN keeps article_entities the outer loop, read newest first from its index, so a page
    # of mentions costs its own rows, not a sort of the whole archive.
    "FROM article_entities ae CROSS JOIN articles a ON a.id = ae.article_id "
    "LEFT JOIN triage t ON t.article_id = ae.article_id AND t.entity_id = ae.entity_id "
)


class TriageStore(Base):
    @own_transaction
    def set_triage(
        self, article_id: int, entity_id: str, verdict: str, reason: str | None, note: str | None, now: datetime
    ) -> None:
        """Record a verdict on one mention (the latest counts; every one is logged)."""
        values = (article_id, entity_id, verdict, reason, (note or None), iso(now))
        self.conn.execute(
            "INSERT OR REPLACE INTO triage(article_id, entity_id, verdict, reason, note, decided_at) "
            "VALUES (?,?,?,?,?,?)",
            values,
        )
        self.conn.execute(
            "INSERT INTO triage_log(article_id, entity_id, verdict, reason, note, decided_at) VALUES (?,?,?,?,?,?)",
            values,
        )

    @reads
    def has_mention(self, article_id: int, entity_id: str) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM article_entities WHERE article_id = ? AND entity_id = ?", (article_id, entity_id)
        ).fetchone()
        return row is not None

    @reads
    def triage_of(self, article_id: int) -> dict[str, TriageRow]:
        return {
            r["entity_id"]: TriageRow.of(r)
            for r in self.db.query("SELECT * FROM triage WHERE article_id = ? ORDER BY entity_id", [article_id])
        }

    @reads
    def triage_history(self, entity_id: str, limit: int = 100) -> list[TriageRow]:
        """The verdicts given on an entity's mentions, newest first, with the articles' titles."""
        return [
            TriageRow.of(r)
            for r in self.db.query(
                "SELECT l.*, a.title, a.url FROM triage_log l JOIN articles a ON a.id = l.article_id "
                "WHERE l.entity_id = ? ORDER BY l.id DESC LIMIT ?",
                [entity_id, limit],
            )
        ]

    @reads
    def inbox(self, limit: int = 200, offset: int = 0) -> list[Mention]:
        """Mentions not yet triaged in original articles, newest found first (not the seed corpus,
        which is known already)."""
        where = "WHERE t.verdict IS NULL AND a.duplicate_of IS NULL AND a.source != 'seed'"
        return self._mentions(where, [], limit, offset)

    @reads
    def entity_mentions(self, entity_id: str, *, limit: int = 200, offset: int = 0) -> list[Mention]:
        return self._mentions("WHERE ae.entity_id = ? AND a.duplicate_of IS NULL", [entity_id], limit, offset)

    @reads
    def article_mentions(self, article_id: int) -> list[Mention]:
        return self._mentions("WHERE ae.article_id = ?", [article_id], 100)

    @reads
    def feed_mentions(self, entity_id: str | None, limit: int = 50) -> list[Mention]:
        """The newest mentions not marked not relevant, of one entity or of all (not the seed corpus)."""
        where = (
            "WHERE a.duplicate_of IS NULL AND a.source != 'seed' AND (t.verdict IS NULL OR t.verdict != 'not-relevant')"
        )
        args: list[Any] = []
        if entity_id is not None:
            where += " AND ae.entity_id = ?"
            args.append(entity_id)
        return self._mentions(where, args, limit)

    def _mentions(self, where: str, args: list[Any], limit: int, offset: int = 0) -> list[Mention]:
        sql = f"{_MENTION}{where} ORDER BY ae.first_seen_at DESC, ae.article_id DESC LIMIT ? OFFSET ?"
        return [Mention.of(r) for r in self.db.query(sql, [*args, limit, offset])]

    @reads
    def open_count(self) -> int:
        """Mentions not yet triaged (what the inbox holds in all)."""
        row = self.conn.execute(
            "SELECT count(*) FROM article_entities ae CROSS JOIN articles a ON a.id = ae.article_id "
            "LEFT JOIN triage t ON t.article_id = ae.article_id AND t.entity_id = ae.entity_id "
            "WHERE t.verdict IS NULL AND a.duplicate_of IS NULL AND a.source != 'seed'"
        ).fetchone()
        return int(row[0])

    @reads
    def entity_counts(self, entity_id: str) -> dict[str, int]:
        """An entity's mentions in originals: in all, relevant, not relevant, not yet triaged."""
        row = self.conn.execute(
            "SELECT count(*), sum(t.verdict = 'relevant'), sum(t.verdict = 'not-relevant'), sum(t.verdict IS NULL) "
            "FROM article_entities ae JOIN articles a ON a.id = ae.article_id "
            "LEFT JOIN triage t ON t.article_id = ae.article_id AND t.entity_id = ae.entity_id "
            "WHERE ae.entity_id = ? AND a.duplicate_of IS NULL",
            (entity_id,),
        ).fetchone()
        return {
            "all": int(row[0] or 0),
            RELEVANT: int(row[1] or 0),
            NOT_RELEVANT: int(row[2] or 0),
            "open": int(row[3] or 0),
        }

    @reads
    def entity_weeks(self, entity_id: str) -> list[tuple[str, int]]:
        """(Monday of the week as YYYY-MM-DD, mentions published that week, or found when the date is
        unknown), oldest first."""
        rows = self.conn.execute(
            "SELECT date(coalesce(a.published_at, ae.first_seen_at), 'weekday 0', '-6 days') AS week, count(*) "
            "FROM article_entities ae JOIN articles a ON a.id = ae.article_id "
            "WHERE ae.entity_id = ? AND a.duplicate_of IS NULL GROUP BY week ORDER BY week",
            (entity_id,),
        ).fetchall()
        return [(str(r[0]), int(r[1])) for r in rows if r[0]]

    @reads
    def snippets_by_verdict(self, entity_id: str, limit: int = 400) -> list[tuple[str | None, str, str]]:
        """(verdict, hit text, snippet) of an entity's hits, newest first: what stood beside it."""
        rows = self.conn.execute(
            "SELECT t.verdict, h.text, h.snippet FROM hits h "
            "LEFT JOIN triage t ON t.article_id = h.article_id AND t.entity_id = h.entity_id "
            "WHERE h.entity_id = ? ORDER BY h.id DESC LIMIT ?",
            (entity_id, limit),
        ).fetchall()
        return [(r[0], str(r[1]), str(r[2])) for r in rows]

    @reads
    def find_search(
        self,
        query: str,
        *,
        entity: str | None = None,
        source: str | None = None,
        language: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int = 50,
    ) -> list[SearchResult]:
        """Full-text search (diacritics, case and đ/d alike) of originals, filtered, newest first.
        With no words, the filters alone choose."""
        where: list[str] = ["a.duplicate_of IS NULL"]
        args: list[Any] = []
        for value, condition in (
            (entity, "a.id IN (SELECT article_id FROM article_entities WHERE entity_id = ?)"),
            (source, "a.source = ?"),
            (language, "a.language = ?"),
            (since, "coalesce(a.published_at, a.fetched_at) >= ?"),
            (until, "coalesce(a.published_at, a.fetched_at) < date(?, '+1 day')"),
        ):
            if value:
                where.append(condition)
                args.append(value)
        columns = "a.id, a.title, a.url, a.source, a.published_at, a.fetched_at, substr(a.text, 1, 240) AS excerpt"
        order = "ORDER BY coalesce(a.published_at, a.fetched_at) DESC LIMIT ?"
        words = folded_key(query).split()
        if words:
            sql = (
                f"SELECT {columns} FROM search_index JOIN articles a ON a.id = search_index.rowid "
                f"WHERE search_index MATCH ? AND {' AND '.join(where)} {order}"
            )
            params = ['"' + " ".join(words) + '"', *args, limit]
        else:
            sql = f"SELECT {columns} FROM articles a WHERE {' AND '.join(where)} {order}"
            params = [*args, limit]
        return [SearchResult(**r) for r in self.db.query(sql, params)]

    @reads
    def languages(self) -> list[str]:
        rows = self.conn.execute(
            "SELECT DISTINCT language FROM articles WHERE language IS NOT NULL ORDER BY language LIMIT 50"
        ).fetchall()
        return [str(r[0]) for r in rows]
