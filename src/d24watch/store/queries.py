"""The read side for people: full-text search of the corpus and the sources that are failing."""

from __future__ import annotations

from d24watch.store.base import Base, reads
from d24watch.store.rows import FailingSource, SearchResult
from d24watch.text import folded_key


class QueriesStore(Base):
    @reads
    def search(self, query: str, limit: int = 20) -> list[SearchResult]:
        """Articles whose folded title or text holds the folded words of `query` as a phrase
        (diacritics, case and đ/d alike), newest first."""
        words = folded_key(query).split()
        if not words:
            return []
        phrase = '"' + " ".join(words) + '"'
        return [
            SearchResult(**r)
            for r in self.db.query(
                "SELECT a.id, a.title, a.url, a.source, a.published_at, a.fetched_at, "
                "snippet(search_index, 1, '[', ']', '…', 12) AS excerpt "
                "FROM search_index JOIN articles a ON a.id = search_index.rowid "
                "WHERE search_index MATCH ? ORDER BY coalesce(a.published_at, a.fetched_at) DESC LIMIT ?",
                [phrase, limit],
            )
        ]

    @reads
    def failing_sources(self) -> list[FailingSource]:
        return [
            FailingSource(**r)
            for r in self.db.query(
                "SELECT name, url, last_error, last_error_at, consecutive_errors FROM sources "
                "WHERE consecutive_errors > 0 ORDER BY name"
            )
        ]
