"""Articles and their revisions, with the two indexes an original gets: full-text search (folded
words, FTS5) and near-duplicates (MinHash signatures and LSH band keys). A duplicate is stored
for the record and never indexed."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime
from typing import Any

from d24watch.dedupe import Signature, band_keys
from d24watch.models import KnownArticle
from d24watch.store.base import Base, in_transaction, iso, own_transaction, reads
from d24watch.store.rows import Article, NewArticle, Revision
from d24watch.text import folded_key

NEAR_CANDIDATES = 500  # LSH candidates compared at most, per lookup


class ArticlesStore(Base):
    # -- what dedupe and revisions ask -------------------------------------------------------

    def _known(self, where: str, args: tuple[Any, ...]) -> KnownArticle | None:
        row = self.conn.execute(
            "SELECT id, canonical_url, text_hash, page_pending, updated_marker, revision, duplicate_of "
            f"FROM articles WHERE {where} ORDER BY id LIMIT 1",
            args,
        ).fetchone()
        if row is None:
            return None
        return KnownArticle(int(row[0]), row[1], row[2], bool(row[3]), row[4], int(row[5]), row[6])

    @reads
    def seen_item(self, source: str, url: str | None, guid: str | None) -> KnownArticle | None:
        """The article this exact feed item was stored as: same GUID in the source, or same URL."""
        if guid:
            found = self._known("source = ? AND guid = ?", (source, guid))
            if found:
                return found
        if url:
            return self._known("url = ?", (url,))
        return None

    @reads
    def by_canonical(self, canonical_url: str) -> KnownArticle | None:
        return self._known("canonical_url = ? AND duplicate_of IS NULL", (canonical_url,))

    @reads
    def by_text_hash(self, digest: str) -> KnownArticle | None:
        return self._known("text_hash = ? AND duplicate_of IS NULL", (digest,))

    @reads
    def by_id(self, article_id: int) -> KnownArticle | None:
        return self._known("id = ?", (article_id,))

    @reads
    def near_candidates(self, sig: Signature) -> list[tuple[int, Signature]]:
        """Stored originals sharing an LSH band with `sig`, with their signatures (none when `sig`
        is too short to compare)."""
        if not sig.usable:
            return []
        keys = band_keys(sig)
        marks = ",".join("?" * len(keys))
        rows = self.conn.execute(
            f"SELECT s.article_id, s.shingles, s.sig FROM signatures s WHERE s.article_id IN "
            f"(SELECT DISTINCT article_id FROM lsh WHERE key IN ({marks}) LIMIT {NEAR_CANDIDATES})",
            keys,
        ).fetchall()
        return [(int(article_id), Signature.from_bytes(blob, int(shingles))) for article_id, shingles, blob in rows]

    # -- writing -----------------------------------------------------------------------------

    @in_transaction
    def insert_article(self, article: NewArticle, sig: Signature | None, folded: str | None = None) -> int:
        """Store an article; an original also gets its first revision and is indexed (search,
        near-duplicates). `folded` is the text's folded words when already known."""
        values = asdict(article)
        values["page_pending"] = int(article.page_pending)
        cursor = self.conn.execute(
            "INSERT INTO articles(source, url, canonical_url, guid, title, author, published_at, fetched_at, "
            "language, text, text_hash, duplicate_of, duplicate_reason, page_pending, updated_marker, via, "
            "publisher, links) "
            "VALUES (:source, :url, :canonical_url, :guid, :title, :author, :published_at, :fetched_at, "
            ":language, :text, :text_hash, :duplicate_of, :duplicate_reason, :page_pending, :updated_marker, :via, "
            ":publisher, :links)",
            values,
        )
        article_id = int(cursor.lastrowid or 0)
        if article.duplicate_of is None:
            self.conn.execute(
                "INSERT INTO revisions(article_id, revision, title, text, text_hash, fetched_at, reason) "
                "VALUES (?, 1, ?, ?, ?, ?, 'first')",
                (article_id, article.title, article.text, article.text_hash, article.fetched_at),
            )
            self._index(article_id, article.title, article.text, sig, folded)
        return article_id

    @in_transaction
    def add_revision(
        self,
        article_id: int,
        *,
        title: str,
        text: str,
        digest: str,
        fetched_at: datetime,
        reason: str,
        sig: Signature | None,
        page_pending: bool,
        updated_marker: str | None,
        folded: str | None = None,
    ) -> int:
        """The article's text (and title) as it now reads: a new revision, indexed afresh."""
        revision = int(self.conn.execute("SELECT revision FROM articles WHERE id = ?", (article_id,)).fetchone()[0]) + 1
        self.conn.execute(
            "INSERT INTO revisions(article_id, revision, title, text, text_hash, fetched_at, reason) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (article_id, revision, title, text, digest, iso(fetched_at), reason),
        )
        self.conn.execute(
            "UPDATE articles SET title = ?, text = ?, text_hash = ?, revision = ?, page_pending = ?, "
            "updated_marker = ? WHERE id = ?",
            (title, text, digest, revision, int(page_pending), updated_marker, article_id),
        )
        self.conn.execute("DELETE FROM search_index WHERE rowid = ?", (article_id,))
        self.conn.execute("DELETE FROM lsh WHERE article_id = ?", (article_id,))
        self.conn.execute("DELETE FROM signatures WHERE article_id = ?", (article_id,))
        self._index(article_id, title, text, sig, folded)
        return revision

    @in_transaction
    def touch_article(self, article_id: int, *, page_pending: bool, updated_marker: str | None) -> None:
        self.conn.execute(
            "UPDATE articles SET page_pending = ?, updated_marker = ? WHERE id = ?",
            (int(page_pending), updated_marker, article_id),
        )

    @in_transaction
    def relink_article(self, article_id: int, *, url: str, canonical_url: str, via: str | None) -> None:
        """An article stored under its aggregator link, moved to the publisher's URL once resolved."""
        self.conn.execute(
            "UPDATE articles SET url = ?, canonical_url = ?, via = COALESCE(via, ?) WHERE id = ?",
            (url, canonical_url, via, article_id),
        )

    @in_transaction
    def fold_into(self, article_id: int, original: int, *, url: str, canonical_url: str, via: str | None) -> None:
        """An article stored under its aggregator link turns out, once resolved, to be one already
        stored from the publisher's own feed: it becomes a copy of that one, out of the indexes."""
        self.conn.execute(
            "UPDATE articles SET url = ?, canonical_url = ?, via = COALESCE(via, ?), duplicate_of = ?, "
            "duplicate_reason = 'url', page_pending = 0 WHERE id = ?",
            (url, canonical_url, via, original, article_id),
        )
        self.conn.execute("DELETE FROM search_index WHERE rowid = ?", (article_id,))
        row = self.conn.execute("SELECT shingles, sig FROM signatures WHERE article_id = ?", (article_id,)).fetchone()
        if row is not None:
            keys = band_keys(Signature.from_bytes(row[1], int(row[0])))
            self.conn.executemany("DELETE FROM lsh WHERE key = ? AND article_id = ?", [(k, article_id) for k in keys])
            self.conn.execute("DELETE FROM signatures WHERE article_id = ?", (article_id,))

    @reads
    def resolved_link(self, identifier: str) -> str | None:
        """The publisher's URL an aggregator ID was resolved to before."""
        row = self.conn.execute("SELECT url FROM resolved_links WHERE id = ?", (identifier,)).fetchone()
        return str(row[0]) if row else None

    @own_transaction
    def remember_link(self, identifier: str, url: str, now: datetime) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO resolved_links(id, url, resolved_at) VALUES (?, ?, ?)", (identifier, url, iso(now))
        )

    def _index(self, article_id: int, title: str, text: str, sig: Signature | None, folded: str | None) -> None:
        self.conn.execute(
            "INSERT INTO search_index(rowid, title, body) VALUES (?, ?, ?)",
            (article_id, folded_key(title), folded if folded is not None else folded_key(text)),
        )
        if sig is not None and sig.usable:
            self.conn.execute(
                "INSERT INTO signatures(article_id, shingles, sig) VALUES (?, ?, ?)",
                (article_id, sig.shingles, sig.to_bytes()),
            )
            self.conn.executemany(
                "INSERT OR IGNORE INTO lsh(key, article_id) VALUES (?, ?)",
                [(k, article_id) for k in band_keys(sig)],
            )

    # -- reading -----------------------------------------------------------------------------

    @reads
    def article(self, article_id: int) -> Article | None:
        rows = list(self.db.query("SELECT * FROM articles WHERE id = ?", [article_id]))
        return Article.of(rows[0]) if rows else None

    @reads
    def find_article(self, url: str) -> Article | None:
        """The article stored under `url` or with it as canonical URL (the original first)."""
        rows = list(
            self.db.query(
                "SELECT * FROM articles WHERE url = ? OR canonical_url = ? ORDER BY duplicate_of IS NOT NULL, id LIMIT 1",
                [url, url],
            )
        )
        return Article.of(rows[0]) if rows else None

    @reads
    def article_url(self, article_id: int) -> str:
        row = self.conn.execute("SELECT canonical_url FROM articles WHERE id = ?", (article_id,)).fetchone()
        return str(row[0]) if row else ""

    @reads
    def revisions_of(self, article_id: int) -> list[Revision]:
        return [
            Revision(**r)
            for r in self.db.query(
                "SELECT article_id, revision, title, text, text_hash, fetched_at, reason FROM revisions "
                "WHERE article_id = ? ORDER BY revision",
                [article_id],
            )
        ]

    def iter_articles(self, since: datetime | None = None, *, originals_only: bool = False) -> Iterator[Article]:
        """Every stored article (fetched since `since`), oldest first, read in pages."""
        where = ["id > ?"]
        args: list[Any] = []
        if since is not None:
            where.append("fetched_at >= ?")
            args.append(iso(since))
        if originals_only:
            where.append("duplicate_of IS NULL")
        sql = f"SELECT * FROM articles WHERE {' AND '.join(where)} ORDER BY id LIMIT 500"
        last = 0
        while True:
            try:
                page = [Article.of(r) for r in self.db.query(sql, [last, *args])]
            except sqlite3.Error as exc:
                raise self._failed("read", exc) from None
            if not page:
                return
            yield from page
            last = page[-1].id

    @reads
    def count_articles(self, *, duplicates: bool = False, seeds: bool = True, since: datetime | None = None) -> int:
        """Originals (or duplicates), with or without the seed corpus, fetched since `since`."""
        where = "duplicate_of IS NOT NULL" if duplicates else "duplicate_of IS NULL"
        if not seeds:
            where += " AND source != 'seed'"
        args: tuple[str, ...] = ()
        if since is not None:
            where += " AND fetched_at >= ?"
            args = (iso(since) or "",)
        return int(self.conn.execute(f"SELECT count(*) FROM articles WHERE {where}", args).fetchone()[0])

    # -- site blocks -------------------------------------------------------------------------

    @reads
    def block_pages(self, host: str, blocks: list[int], since: datetime) -> dict[int, int]:
        """On how many stored pages of `host` each block was seen, counting pages since `since`."""
        if not blocks:
            return {}
        out: dict[int, int] = {}
        for start in range(0, len(blocks), 500):
            chunk = blocks[start : start + 500]
            rows = self.conn.execute(
                f"SELECT block, pages FROM site_blocks WHERE host = ? AND last_seen_at >= ? "
                f"AND block IN ({','.join('?' * len(chunk))})",
                (host, iso(since), *chunk),
            )
            out.update((int(b), int(n)) for b, n in rows)
        return out

    @in_transaction
    def count_blocks(self, host: str, blocks: list[int], now: datetime) -> None:
        """One more page of `host` carries each of `blocks`."""
        self.conn.executemany(
            "INSERT INTO site_blocks(host, block, pages, last_seen_at) VALUES (?, ?, 1, ?) "
            "ON CONFLICT(host, block) DO UPDATE SET pages = pages + 1, last_seen_at = excluded.last_seen_at",
            [(host, b, iso(now)) for b in blocks],
        )
