"""The schema: each migration runs once, in order, inside a transaction; its index + 1 is the
schema version (PRAGMA user_version). A database newer than this code is refused."""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

from d24watch.dedupe import band_keys, signature
from d24watch.errors import StorageError
from d24watch.store.base import Base, reads


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


def _m5_site_blocks(db: sqlite_utils.Database) -> None:
    """How many pages of each site carry each block (line) of text: a site's recurring blocks are
    left out when texts are compared for copies."""
    db.executescript(
        """
        CREATE TABLE site_blocks (
            host TEXT NOT NULL, block INTEGER NOT NULL, pages INTEGER NOT NULL, last_seen_at TEXT NOT NULL,
            PRIMARY KEY (host, block)
        ) WITHOUT ROWID;
        """
    )


def _m6_coverage(db: sqlite_utils.Database) -> None:
    """Sources beyond feeds: an article's aggregator link (`via`), its publisher and outbound links;
    why a source's next poll is when it is, and how many aggregator links it resolved; what a
    sitemap or a channel was last read up to (`source_marks`); aggregator IDs resolved once."""
    db.executescript(
        """
        ALTER TABLE articles ADD COLUMN via TEXT;
        ALTER TABLE articles ADD COLUMN publisher TEXT;
        ALTER TABLE articles ADD COLUMN links TEXT;
        CREATE INDEX articles_via ON articles(via);
        ALTER TABLE sources ADD COLUMN next_reason TEXT;
        ALTER TABLE sources ADD COLUMN resolved INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE sources ADD COLUMN unresolved INTEGER NOT NULL DEFAULT 0;
        CREATE TABLE source_marks (
            source TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (source, key)
        ) WITHOUT ROWID;
        CREATE TABLE resolved_links (
            id TEXT PRIMARY KEY, url TEXT NOT NULL, resolved_at TEXT NOT NULL
        ) WITHOUT ROWID;
        """
    )


def _m7_triage(db: sqlite_utils.Database) -> None:
    """Researchers' verdicts on each (article, entity) mention, the latest in `triage` and every
    one in `triage_log`; mentions by entity and time, for the workspace's pages and feeds."""
    db.executescript(
        """
        CREATE TABLE triage (
            article_id INTEGER NOT NULL REFERENCES articles(id), entity_id TEXT NOT NULL,
            verdict TEXT NOT NULL, reason TEXT, note TEXT, decided_at TEXT NOT NULL,
            PRIMARY KEY (article_id, entity_id)
        ) WITHOUT ROWID;
        CREATE TABLE triage_log (
            id INTEGER PRIMARY KEY, article_id INTEGER NOT NULL, entity_id TEXT NOT NULL,
            verdict TEXT NOT NULL, reason TEXT, note TEXT, decided_at TEXT NOT NULL
        );
        CREATE INDEX triage_log_entity ON triage_log(entity_id, id);
        CREATE INDEX article_entities_entity ON article_entities(entity_id, first_seen_at, article_id);
        CREATE INDEX article_entities_seen ON article_entities(first_seen_at, article_id);
        CREATE INDEX articles_duplicate ON articles(duplicate_of);
        CREATE INDEX hits_entity ON hits(entity_id, id);
        """
    )


def _m8_custody(db: sqlite_utils.Database) -> None:
    """Evidence that holds up: each record's id and the hash of its bytes, its RFC 3161 timestamp
    token (or why it is still pending), and the custody log, hash-chained per article."""
    db.executescript(
        """
        ALTER TABLE evidence ADD COLUMN record_id TEXT;
        ALTER TABLE evidence ADD COLUMN record_sha256 TEXT;
        ALTER TABLE evidence ADD COLUMN tsa_token BLOB;
        ALTER TABLE evidence ADD COLUMN tsa_time TEXT;
        ALTER TABLE evidence ADD COLUMN tsa_attempts INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE evidence ADD COLUMN tsa_error TEXT;
        CREATE INDEX evidence_unstamped ON evidence(tsa_time) WHERE tsa_token IS NULL;
        CREATE TABLE custody (
            id INTEGER PRIMARY KEY, article_id INTEGER NOT NULL, action TEXT NOT NULL, detail TEXT NOT NULL,
            at TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL
        );
        CREATE INDEX custody_article ON custody(article_id, id);
        """
    )


MIGRATIONS: tuple[Callable[[sqlite_utils.Database], None], ...] = (
    _m1_initial,
    _m2_delivery,
    _m3_signatures,
    _m4_evidence,
    _m5_site_blocks,
    _m6_coverage,
    _m7_triage,
    _m8_custody,
)
SCHEMA_VERSION = len(MIGRATIONS)


class SchemaStore(Base):
    @reads
    def version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> int:
        """Apply every migration not yet applied, each in its own transaction; returns how many ran."""
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
