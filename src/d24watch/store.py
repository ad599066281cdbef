"""The only sqlite-utils import: the database, its migrations and every query. One connection,
WAL, a busy timeout; each source update is one transaction. The store applies what it is handed
and decides nothing."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from d24watch.dedupe import Signature, band_keys, signature
from d24watch.errors import StorageError
from d24watch.evidence import Snapshot
from d24watch.text import folded_key


def iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z") if moment else None


def parse_iso(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# Each migration runs once, in order, inside a transaction; its index + 1 is the schema version.
def _m1_initial(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE sources (
            name TEXT PRIMARY KEY, kind TEXT NOT NULL, url TEXT NOT NULL,
            etag TEXT, last_modified TEXT,
            next_check_at TEXT, last_polled_at TEXT, last_success_at TEXT,
            consecutive_errors INTEGER NOT NULL DEFAULT 0, last_error TEXT, last_error_at TEXT,
            items_seen INTEGER NOT NULL DEFAULT 0, polls INTEGER NOT NULL DEFAULT 0,
            errors INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE articles (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL, url TEXT NOT NULL, canonical_url TEXT NOT NULL, guid TEXT,
            title TEXT NOT NULL DEFAULT '', author TEXT, published_at TEXT, fetched_at TEXT NOT NULL,
            language TEXT, text TEXT NOT NULL DEFAULT '', text_hash TEXT NOT NULL,
            revision INTEGER NOT NULL DEFAULT 1,
            duplicate_of INTEGER REFERENCES articles(id), duplicate_reason TEXT,
            page_pending INTEGER NOT NULL DEFAULT 0, updated_marker TEXT
        );
        CREATE INDEX articles_url ON articles(url);
        CREATE INDEX articles_canonical ON articles(canonical_url);
        CREATE INDEX articles_guid ON articles(source, guid);
        CREATE INDEX articles_hash ON articles(text_hash);
        CREATE INDEX articles_fetched ON articles(fetched_at);
        CREATE TABLE revisions (
            id INTEGER PRIMARY KEY, article_id INTEGER NOT NULL REFERENCES articles(id),
            revision INTEGER NOT NULL, title TEXT NOT NULL, text TEXT NOT NULL, text_hash TEXT NOT NULL,
            fetched_at TEXT NOT NULL, reason TEXT NOT NULL, UNIQUE(article_id, revision)
        );
        CREATE TABLE signatures (
            article_id INTEGER PRIMARY KEY REFERENCES articles(id), shingles INTEGER NOT NULL, sig BLOB NOT NULL
        );
        CREATE TABLE lsh (key INTEGER NOT NULL, article_id INTEGER NOT NULL, PRIMARY KEY (key, article_id))
            WITHOUT ROWID;
        CREATE TABLE article_entities (
            article_id INTEGER NOT NULL REFERENCES articles(id), entity_id TEXT NOT NULL,
            first_seen_at TEXT NOT NULL, revision INTEGER NOT NULL, PRIMARY KEY (article_id, entity_id)
        );
        CREATE TABLE hits (
            id INTEGER PRIMARY KEY, article_id INTEGER NOT NULL REFERENCES articles(id),
            revision INTEGER NOT NULL, entity_id TEXT NOT NULL, field TEXT NOT NULL, text TEXT NOT NULL,
            start INTEGER NOT NULL, "end" INTEGER NOT NULL, snippet TEXT NOT NULL, found_at TEXT NOT NULL
        );
        CREATE INDEX hits_article ON hits(article_id, entity_id);
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY, delivery_id TEXT NOT NULL UNIQUE, channel TEXT NOT NULL,
            event TEXT NOT NULL, article_id INTEGER REFERENCES articles(id), entities TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT NOT NULL, last_error TEXT, created_at TEXT NOT NULL, sent_at TEXT
        );
        CREATE INDEX outbox_due ON outbox(status, next_attempt_at);
        CREATE TABLE digest_queue (
            channel TEXT NOT NULL, article_id INTEGER NOT NULL REFERENCES articles(id),
            entity_id TEXT NOT NULL, event TEXT NOT NULL DEFAULT 'mention', created_at TEXT NOT NULL,
            digested_at TEXT, PRIMARY KEY (channel, article_id, entity_id, event)
        );
        CREATE TABLE poll_log (
            id INTEGER PRIMARY KEY, source TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT NOT NULL,
            ok INTEGER NOT NULL, new INTEGER NOT NULL, duplicates INTEGER NOT NULL, error TEXT
        );
        CREATE VIRTUAL TABLE search_index USING fts5(title, body, tokenize = 'unicode61 remove_diacritics 2');
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        """
    )


def _m2_delivery(db: sqlite_utils.Database) -> None:
    """Deliveries keep the payload rendered at their first attempt (retries send the same bytes),
    hold a lease while one process sends them, and digest lines belong to the batch that carries them."""
    db.executescript(
        """
        ALTER TABLE outbox ADD COLUMN payload TEXT;
        ALTER TABLE outbox ADD COLUMN lease_until TEXT;
        ALTER TABLE digest_queue ADD COLUMN batch_id INTEGER REFERENCES outbox(id);
        CREATE INDEX digest_pending ON digest_queue(channel, digested_at, batch_id);
        """
    )


def _m3_signatures(db: sqlite_utils.Database) -> None:
    """MinHash permutations changed (their coefficients were too small to mix): every stored
    original's signature and band keys are computed again from its text."""
    conn = db.conn
    conn.execute("DELETE FROM lsh")
    conn.execute("DELETE FROM signatures")
    rows = conn.execute("SELECT id, text FROM articles WHERE duplicate_of IS NULL")
    while batch := rows.fetchmany(500):
        for article_id, text in batch:
            sig = signature(text)
            if not sig.usable:
                continue
            conn.execute(
                "INSERT INTO signatures(article_id, shingles, sig) VALUES (?, ?, ?)",
                (article_id, sig.shingles, sig.to_bytes()),
            )
            conn.executemany(
                "INSERT OR IGNORE INTO lsh(key, article_id) VALUES (?, ?)", [(k, article_id) for k in band_keys(sig)]
            )


def _m4_evidence(db: sqlite_utils.Database) -> None:
    """Snapshots kept in WARC files, the re-check schedule of articles with hits, and the events
    (changed, removed) found by re-checks and by pages watched for removal."""
    db.executescript(
        """
        CREATE TABLE evidence (
            id INTEGER PRIMARY KEY, article_id INTEGER NOT NULL REFERENCES articles(id), url TEXT NOT NULL,
            fetched_at TEXT NOT NULL, status INTEGER NOT NULL, sha256 TEXT NOT NULL, reason TEXT NOT NULL,
            warc_file TEXT NOT NULL, warc_offset INTEGER NOT NULL, warc_length INTEGER NOT NULL
        );
        CREATE INDEX evidence_article ON evidence(article_id);
        CREATE TABLE rechecks (
            article_id INTEGER NOT NULL REFERENCES articles(id), due_at TEXT NOT NULL, done_at TEXT,
            outcome TEXT, PRIMARY KEY (article_id, due_at)
        );
        CREATE INDEX rechecks_due ON rechecks(done_at, due_at);
        CREATE TABLE article_events (
            id INTEGER PRIMARY KEY, article_id INTEGER NOT NULL REFERENCES articles(id), kind TEXT NOT NULL,
            revision INTEGER NOT NULL, detail TEXT NOT NULL, found_at TEXT NOT NULL
        );
        """
    )


MIGRATIONS: tuple[Callable[[sqlite_utils.Database], None], ...] = (
    _m1_initial,
    _m2_delivery,
    _m3_signatures,
    _m4_evidence,
)
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True, slots=True)
class SourceState:
    name: str
    etag: str | None
    last_modified: str | None
    next_check_at: datetime | None
    consecutive_errors: int


@dataclass(frozen=True, slots=True)
class KnownArticle:
    id: int
    canonical_url: str
    text_hash: str
    page_pending: bool
    updated_marker: str | None
    revision: int
    duplicate_of: int | None


class Store:
    def __init__(self, path: Path, *, readonly: bool = False, busy_timeout_s: float = 30) -> None:
        self.path = path
        try:
            if not readonly:
                path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                f"file:{path}?mode=ro" if readonly else str(path),
                uri=readonly,
                isolation_level=None,
                timeout=busy_timeout_s,
            )
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            if not readonly:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(f"cannot open the database {path}: {exc}") from None
        self.conn = conn
        self.db = sqlite_utils.Database(conn)
        self._depth = 0

    def close(self) -> None:
        self.conn.close()

    # -- schema ------------------------------------------------------------------------------

    def version(self) -> int:
        try:
            return int(self.conn.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read the database {self.path}: {exc}") from None

    def migrate(self) -> int:
        """Apply every migration not yet applied; returns how many ran."""
        current = self.version()
        if current > SCHEMA_VERSION:
            raise StorageError(
                f"the database {self.path} has schema version {current}, newer than this d24watch "
                f"({SCHEMA_VERSION}); upgrade d24watch"
            )
        for number in range(current, SCHEMA_VERSION):
            with self.transaction():
                MIGRATIONS[number](self.db)
                self.conn.execute(f"PRAGMA user_version = {number + 1}")
        return SCHEMA_VERSION - current

    def require_schema(self) -> None:
        if self.version() != SCHEMA_VERSION:
            raise StorageError(f"the database {self.path} is not initialised or is out of date: run `d24watch init`")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction; nested calls join the outer one."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StorageError(f"cannot write to the database {self.path}: {exc}") from None
        self._depth = 1
        try:
            yield
        except sqlite3.Error as exc:
            self._depth = 0
            self._rollback()
            raise StorageError(f"cannot write to the database {self.path}: {exc}") from None
        except BaseException:
            self._depth = 0
            self._rollback()
            raise
        self._depth = 0
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise StorageError(f"cannot write to the database {self.path}: {exc}") from None

    def _rollback(self) -> None:
        # SQLite may have rolled back already (as it does on a full disk); nothing is half-written.
        with contextlib.suppress(sqlite3.Error):
            self.conn.execute("ROLLBACK")

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def check_writable(self) -> bool:
        try:
            with self.transaction():
                self.set_meta("last_health_check", iso(datetime.now(UTC)) or "")
        except StorageError:
            return False
        return True

    # -- sources -----------------------------------------------------------------------------

    def sync_sources(self, sources: Iterable[tuple[str, str, str]], now: datetime) -> None:
        """Make sure every configured (name, kind, url) has a row; a changed URL starts afresh."""
        with self.transaction():
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

    def source_state(self, name: str) -> SourceState:
        row = self.conn.execute(
            "SELECT etag, last_modified, next_check_at, consecutive_errors FROM sources WHERE name = ?",
            (name,),
        ).fetchone()
        if row is None:
            return SourceState(name, None, None, None, 0)
        return SourceState(name, row[0], row[1], parse_iso(row[2]), int(row[3]))

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

    def record_source_success(
        self,
        name: str,
        *,
        now: datetime,
        next_check_at: datetime,
        etag: str | None,
        last_modified: str | None,
        items: int,
        keep_validators: bool = False,
    ) -> None:
        if keep_validators:
            self.conn.execute(
                "UPDATE sources SET last_polled_at = ?, last_success_at = ?, next_check_at = ?, "
                "consecutive_errors = 0, polls = polls + 1 WHERE name = ?",
                (iso(now), iso(now), iso(next_check_at), name),
            )
        else:
            self.conn.execute(
                "UPDATE sources SET last_polled_at = ?, last_success_at = ?, next_check_at = ?, etag = ?, "
                "last_modified = ?, consecutive_errors = 0, items_seen = items_seen + ?, polls = polls + 1 "
                "WHERE name = ?",
                (iso(now), iso(now), iso(next_check_at), etag, last_modified, items, name),
            )

    def record_source_failure(self, name: str, *, now: datetime, next_check_at: datetime, error: str) -> None:
        self.conn.execute(
            "UPDATE sources SET last_polled_at = ?, next_check_at = ?, consecutive_errors = consecutive_errors + 1, "
            "last_error = ?, last_error_at = ?, polls = polls + 1, errors = errors + 1 WHERE name = ?",
            (iso(now), iso(next_check_at), error[:1000], iso(now), name),
        )

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
        # Keep the log bounded: the newest 200 polls per source.
        self.conn.execute(
            "DELETE FROM poll_log WHERE source = ? AND id NOT IN "
            "(SELECT id FROM poll_log WHERE source = ? ORDER BY id DESC LIMIT 200)",
            (name, name),
        )

    def source_rows(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.query("SELECT * FROM sources ORDER BY name")]

    # -- articles ----------------------------------------------------------------------------

    def _known(self, where: str, args: tuple[Any, ...]) -> KnownArticle | None:
        row = self.conn.execute(
            "SELECT id, canonical_url, text_hash, page_pending, updated_marker, revision, duplicate_of "
            f"FROM articles WHERE {where} ORDER BY id LIMIT 1",
            args,
        ).fetchone()
        if row is None:
            return None
        return KnownArticle(int(row[0]), row[1], row[2], bool(row[3]), row[4], int(row[5]), row[6])

    def seen_item(self, source: str, url: str | None, guid: str | None) -> KnownArticle | None:
        """The article this exact feed item was stored as: same GUID in the source, or same URL."""
        if guid:
            found = self._known("source = ? AND guid = ?", (source, guid))
            if found:
                return found
        if url:
            return self._known("url = ?", (url,))
        return None

    def by_canonical(self, canonical_url: str) -> KnownArticle | None:
        return self._known("canonical_url = ? AND duplicate_of IS NULL", (canonical_url,))

    def by_text_hash(self, digest: str) -> KnownArticle | None:
        return self._known("text_hash = ? AND duplicate_of IS NULL", (digest,))

    def by_id(self, article_id: int) -> KnownArticle | None:
        return self._known("id = ?", (article_id,))

    def article_url(self, article_id: int) -> str:
        row = self.conn.execute("SELECT canonical_url FROM articles WHERE id = ?", (article_id,)).fetchone()
        return str(row[0]) if row else ""

    def near_duplicate(self, sig: Signature, accept: Callable[[Signature, Signature], bool]) -> int | None:
        """The first stored original whose signature `accept`s the new one, among LSH candidates."""
        if not sig.usable:
            return None
        keys = band_keys(sig)
        marks = ",".join("?" * len(keys))
        rows = self.conn.execute(
            f"SELECT s.article_id, s.shingles, s.sig FROM signatures s WHERE s.article_id IN "
            f"(SELECT DISTINCT article_id FROM lsh WHERE key IN ({marks}) LIMIT 500)",
            keys,
        ).fetchall()
        for article_id, shingles, blob in rows:
            if accept(sig, Signature.from_bytes(blob, int(shingles))):
                return int(article_id)
        return None

    def insert_article(self, row: dict[str, Any], sig: Signature | None, folded: str | None = None) -> int:
        """Store an article; an original is also indexed (search, near-duplicates). `folded` is the
        text's folded words when already known."""
        cursor = self.conn.execute(
            "INSERT INTO articles(source, url, canonical_url, guid, title, author, published_at, fetched_at, "
            "language, text, text_hash, duplicate_of, duplicate_reason, page_pending, updated_marker) "
            "VALUES (:source, :url, :canonical_url, :guid, :title, :author, :published_at, :fetched_at, "
            ":language, :text, :text_hash, :duplicate_of, :duplicate_reason, :page_pending, :updated_marker)",
            {
                "duplicate_of": None,
                "duplicate_reason": None,
                "page_pending": 0,
                "updated_marker": None,
                **row,
            },
        )
        article_id = int(cursor.lastrowid or 0)
        if row.get("duplicate_of") is None:
            self.conn.execute(
                "INSERT INTO revisions(article_id, revision, title, text, text_hash, fetched_at, reason) "
                "VALUES (?, 1, ?, ?, ?, ?, 'first')",
                (article_id, row["title"], row["text"], row["text_hash"], row["fetched_at"]),
            )
            self._index(article_id, row["title"], row["text"], sig, folded)
        return article_id

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
        extra: dict[str, Any] | None = None,
        folded: str | None = None,
    ) -> int:
        revision = int(self.conn.execute("SELECT revision FROM articles WHERE id = ?", (article_id,)).fetchone()[0]) + 1
        self.conn.execute(
            "INSERT INTO revisions(article_id, revision, title, text, text_hash, fetched_at, reason) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (article_id, revision, title, text, digest, iso(fetched_at), reason),
        )
        fields = {
            "title": title,
            "text": text,
            "text_hash": digest,
            "revision": revision,
            "page_pending": int(page_pending),
            "updated_marker": updated_marker,
            **(extra or {}),
        }
        assignments = ", ".join(f"{k} = :{k}" for k in fields)
        self.conn.execute(f"UPDATE articles SET {assignments} WHERE id = :id", {**fields, "id": article_id})
        self.conn.execute("DELETE FROM search_index WHERE rowid = ?", (article_id,))
        self.conn.execute("DELETE FROM lsh WHERE article_id = ?", (article_id,))
        self.conn.execute("DELETE FROM signatures WHERE article_id = ?", (article_id,))
        self._index(article_id, title, text, sig, folded)
        return revision

    def touch_article(self, article_id: int, *, page_pending: bool, updated_marker: str | None) -> None:
        self.conn.execute(
            "UPDATE articles SET page_pending = ?, updated_marker = ? WHERE id = ?",
            (int(page_pending), updated_marker, article_id),
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

    def article(self, article_id: int) -> dict[str, Any] | None:
        rows = list(self.db.query("SELECT * FROM articles WHERE id = ?", [article_id]))
        return rows[0] if rows else None

    def count(self, table: str, where: str = "1", args: tuple[Any, ...] = ()) -> int:
        return int(self.conn.execute(f"SELECT count(*) FROM {table} WHERE {where}", args).fetchone()[0])

    # -- hits and entities -------------------------------------------------------------------

    def entities_of(self, article_id: int) -> set[str]:
        rows = self.conn.execute("SELECT entity_id FROM article_entities WHERE article_id = ?", (article_id,))
        return {str(r[0]) for r in rows}

    def record_hits(self, article_id: int, revision: int, entity_id: str, hits: Iterable[Any], now: datetime) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO article_entities(article_id, entity_id, first_seen_at, revision) VALUES (?,?,?,?)",
            (article_id, entity_id, iso(now), revision),
        )
        self.conn.executemany(
            'INSERT INTO hits(article_id, revision, entity_id, field, text, start, "end", snippet, found_at) '
            "VALUES (?,?,?,?,?,?,?,?,?)",
            [(article_id, revision, entity_id, h.field, h.text, h.start, h.end, h.snippet, iso(now)) for h in hits],
        )

    def hits_for(self, article_id: int, entity_ids: Iterable[str] | None = None) -> dict[str, list[dict[str, Any]]]:
        """The hits of the article's latest revision that has hits, per entity."""
        rows = self.db.query(
            'SELECT entity_id, field, text, start, "end", snippet, revision FROM hits WHERE article_id = ? '
            "ORDER BY entity_id, revision DESC, start",
            [article_id],
        )
        wanted = set(entity_ids) if entity_ids is not None else None
        out: dict[str, list[dict[str, Any]]] = {}
        newest: dict[str, int] = {}
        for row in rows:
            entity = row["entity_id"]
            if wanted is not None and entity not in wanted:
                continue
            if newest.setdefault(entity, row["revision"]) != row["revision"]:
                continue
            hit = {"text": row["text"], "start": row["start"], "end": row["end"], "snippet": row["snippet"]}
            if row["field"] != "text":
                hit["field"] = row["field"]
            out.setdefault(entity, []).append(hit)
        return out

    # -- evidence ----------------------------------------------------------------------------

    def add_evidence(
        self, article_id: int, url: str, fetched_at: datetime, status: int, reason: str, snap: Snapshot
    ) -> None:
        self.conn.execute(
            "INSERT INTO evidence(article_id, url, fetched_at, status, sha256, reason, warc_file, warc_offset, "
            "warc_length) VALUES (?,?,?,?,?,?,?,?,?)",
            (article_id, url, iso(fetched_at), status, snap.sha256, reason, snap.warc_file, snap.offset, snap.length),
        )

    def evidence_of(self, article_id: int) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT * FROM evidence WHERE article_id = ? ORDER BY id", [article_id]))

    def schedule_rechecks(self, article_id: int, due: Iterable[datetime]) -> None:
        self.conn.executemany(
            "INSERT OR IGNORE INTO rechecks(article_id, due_at) VALUES (?, ?)", [(article_id, iso(d)) for d in due]
        )

    def due_rechecks(self, now: datetime) -> list[int]:
        """Articles with a re-check due (each once, however many of its checks are due)."""
        rows = self.conn.execute(
            "SELECT DISTINCT article_id FROM rechecks WHERE done_at IS NULL AND due_at <= ? ORDER BY article_id",
            (iso(now),),
        )
        return [int(r[0]) for r in rows]

    def first_due_recheck(self, article_id: int) -> datetime | None:
        row = self.conn.execute(
            "SELECT min(due_at) FROM rechecks WHERE article_id = ? AND done_at IS NULL", (article_id,)
        ).fetchone()
        return parse_iso(row[0]) if row else None

    def finish_rechecks(self, article_id: int, now: datetime, outcome: str, *, all_remaining: bool = False) -> None:
        """Mark the article's due checks done (or every remaining one, after a removal)."""
        where = "" if all_remaining else " AND due_at <= :now"
        self.conn.execute(
            f"UPDATE rechecks SET done_at = :now, outcome = :outcome WHERE article_id = :id AND done_at IS NULL{where}",
            {"now": iso(now), "outcome": outcome, "id": article_id},
        )

    def add_event(self, article_id: int, kind: str, revision: int, detail: dict[str, Any], now: datetime) -> int:
        cursor = self.conn.execute(
            "INSERT INTO article_events(article_id, kind, revision, detail, found_at) VALUES (?,?,?,?,?)",
            (article_id, kind, revision, json.dumps(detail, ensure_ascii=False), iso(now)),
        )
        return int(cursor.lastrowid or 0)

    def event_detail(self, event_id: int) -> dict[str, Any]:
        row = self.conn.execute("SELECT detail FROM article_events WHERE id = ?", (event_id,)).fetchone()
        detail: dict[str, Any] = json.loads(row[0]) if row else {}
        return detail

    def events_of(self, article_id: int) -> list[dict[str, Any]]:
        return list(
            self.db.query(
                "SELECT kind, revision, detail, found_at FROM article_events WHERE article_id = ? ORDER BY id",
                [article_id],
            )
        )

    def forget_entities(self, article_id: int, entity_ids: Iterable[str]) -> None:
        """The page no longer names them: a later mention is news again."""
        self.conn.executemany(
            "DELETE FROM article_entities WHERE article_id = ? AND entity_id = ?",
            [(article_id, e) for e in entity_ids],
        )

    def find_article(self, url: str) -> dict[str, Any] | None:
        rows = list(
            self.db.query(
                "SELECT * FROM articles WHERE url = ? OR canonical_url = ? ORDER BY duplicate_of IS NOT NULL, id LIMIT 1",
                [url, url],
            )
        )
        return rows[0] if rows else None

    def revisions_of(self, article_id: int) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT * FROM revisions WHERE article_id = ? ORDER BY revision", [article_id]))

    # -- outbox ------------------------------------------------------------------------------

    def enqueue_delivery(
        self, delivery_id: str, channel: str, event: str, article_id: int, entities: list[str], now: datetime
    ) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO outbox(delivery_id, channel, event, article_id, entities, next_attempt_at, "
            "created_at) VALUES (?,?,?,?,?,?,?)",
            (delivery_id, channel, event, article_id, json.dumps(entities), iso(now), iso(now)),
        )

    def enqueue_digest(self, channel: str, article_id: int, entity_id: str, event: str, now: datetime) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO digest_queue(channel, article_id, entity_id, event, created_at) VALUES (?,?,?,?,?)",
            (channel, article_id, entity_id, event, iso(now)),
        )

    def claim_deliveries(
        self,
        now: datetime,
        channels: Iterable[str],
        *,
        lease: timedelta,
        due_only: bool = True,
        event: str | None = None,
    ) -> list[dict[str, Any]]:
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
        if event is not None:
            where.append("event = ?")
            args.append(event)
        with self.transaction():
            rows = list(self.db.query(f"SELECT * FROM outbox WHERE {' AND '.join(where)} ORDER BY id", args))
            self.conn.executemany(
                "UPDATE outbox SET lease_until = ? WHERE id = ?", [(iso(now + lease), r["id"]) for r in rows]
            )
        return rows

    def release_delivery(self, outbox_id: int) -> None:
        self.conn.execute("UPDATE outbox SET lease_until = NULL WHERE id = ?", (outbox_id,))

    def save_payload(self, outbox_id: int, payload: str) -> None:
        self.conn.execute("UPDATE outbox SET payload = ? WHERE id = ? AND payload IS NULL", (payload, outbox_id))

    def mark_delivered(self, outbox_id: int, now: datetime) -> None:
        with self.transaction():
            self.conn.execute(
                "UPDATE outbox SET status = 'sent', sent_at = ?, attempts = attempts + 1, last_error = NULL, "
                "lease_until = NULL WHERE id = ?",
                (iso(now), outbox_id),
            )
            self.conn.execute(
                "UPDATE digest_queue SET digested_at = ? WHERE batch_id = ? AND digested_at IS NULL",
                (iso(now), outbox_id),
            )

    def mark_delivery_failed(self, outbox_id: int, error: str, next_attempt_at: datetime) -> None:
        with self.transaction():
            self.conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, lease_until = NULL "
                "WHERE id = ?",
                (error[:1000], iso(next_attempt_at), outbox_id),
            )

    def pending_digest(self, channel: str, *, unbatched_only: bool = False) -> list[dict[str, Any]]:
        """Digest lines of `channel` not yet accepted by it, oldest first."""
        extra = " AND batch_id IS NULL" if unbatched_only else ""
        return list(
            self.db.query(
                "SELECT article_id, entity_id, event, created_at, batch_id FROM digest_queue "
                f"WHERE channel = ? AND digested_at IS NULL{extra} ORDER BY created_at, article_id, entity_id",
                [channel],
            )
        )

    def batch_digest(self, channel: str, delivery_id: str, now: datetime) -> int | None:
        """Gather the channel's unbatched digest lines into one pending delivery (event `digest`);
        its id, or None when there is nothing new."""
        with self.transaction():
            count = self.count("digest_queue", "channel = ? AND digested_at IS NULL AND batch_id IS NULL", (channel,))
            if not count:
                return None
            cursor = self.conn.execute(
                "INSERT INTO outbox(delivery_id, channel, event, article_id, entities, next_attempt_at, created_at) "
                "VALUES (?, ?, 'digest', NULL, '[]', ?, ?)",
                (delivery_id, channel, iso(now), iso(now)),
            )
            batch_id = int(cursor.lastrowid or 0)
            self.conn.execute(
                "UPDATE digest_queue SET batch_id = ? WHERE channel = ? AND digested_at IS NULL AND batch_id IS NULL",
                (batch_id, channel),
            )
            return batch_id

    def batch_lines(self, batch_id: int) -> list[dict[str, Any]]:
        return list(
            self.db.query(
                "SELECT article_id, entity_id, event, created_at FROM digest_queue WHERE batch_id = ? "
                "ORDER BY created_at, article_id, entity_id",
                [batch_id],
            )
        )

    def delivery_counts(self) -> dict[str, int]:
        """sent, pending (waiting for a first attempt or a retry) and failing (pending after an error)."""
        row = self.conn.execute(
            "SELECT sum(status = 'sent'), sum(status = 'pending'), sum(status = 'pending' AND last_error IS NOT NULL) "
            "FROM outbox"
        ).fetchone()
        return {"sent": int(row[0] or 0), "pending": int(row[1] or 0), "failing": int(row[2] or 0)}

    def failing_deliveries(self) -> list[dict[str, Any]]:
        return list(
            self.db.query(
                "SELECT channel, event, attempts, last_error, next_attempt_at FROM outbox "
                "WHERE status = 'pending' AND last_error IS NOT NULL ORDER BY id"
            )
        )

    # -- reading the corpus ------------------------------------------------------------------

    def iter_articles(self, since: datetime | None = None, *, originals_only: bool = False) -> Iterator[dict[str, Any]]:
        where = ["1"]
        args: list[Any] = []
        if since is not None:
            where.append("fetched_at >= ?")
            args.append(iso(since))
        if originals_only:
            where.append("duplicate_of IS NULL")
        yield from self.db.query(f"SELECT * FROM articles WHERE {' AND '.join(where)} ORDER BY id", args)

    def search(self, query: str, limit: int = 20) -> list[dict[str, Any]]:
        words = folded_key(query).split()
        if not words:
            return []
        phrase = '"' + " ".join(words) + '"'
        return list(
            self.db.query(
                "SELECT a.id, a.title, a.url, a.source, a.published_at, a.fetched_at, "
                "snippet(search_index, 1, '[', ']', '…', 12) AS excerpt "
                "FROM search_index JOIN articles a ON a.id = search_index.rowid "
                "WHERE search_index MATCH ? ORDER BY coalesce(a.published_at, a.fetched_at) DESC LIMIT ?",
                [phrase, limit],
            )
        )

    def failing_sources(self) -> list[dict[str, Any]]:
        return list(
            self.db.query(
                "SELECT name, url, last_error, last_error_at, consecutive_errors FROM sources "
                "WHERE consecutive_errors > 0 ORDER BY name"
            )
        )


def backoff(interval: timedelta, errors: int, *, cap: timedelta = timedelta(days=1)) -> timedelta:
    """The wait after `errors` consecutive failures: the interval doubled each time, at most `cap`."""
    wait: timedelta = interval * (2 ** min(errors, 20))
    return min(cap, wait)
