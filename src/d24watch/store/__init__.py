"""The only SQL and the only sqlite-utils import: one `Store` over one connection, built from one
part per concern (schema, sources, articles, hits, evidence, outbox, queries, triage). The store applies
what it is handed and decides nothing; each method says by its marker (base.py) whether it must
run inside `transaction()`."""

from __future__ import annotations

from datetime import UTC, datetime

from d24watch.errors import StorageError
from d24watch.store.articles import ArticlesStore
from d24watch.store.base import iso, own_transaction, parse_iso
from d24watch.store.evidence import EvidenceStore
from d24watch.store.hits import HitsStore
from d24watch.store.outbox import OutboxStore
from d24watch.store.queries import QueriesStore
from d24watch.store.schema import MIGRATIONS, SCHEMA_VERSION, SchemaStore
from d24watch.store.sources import SourcesStore
from d24watch.store.triage import TriageStore

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Store", "iso", "parse_iso"]


class Store(SchemaStore, SourcesStore, ArticlesStore, HitsStore, EvidenceStore, OutboxStore, QueriesStore, TriageStore):
    @own_transaction
    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def check_writable(self) -> bool:
        """Whether a write goes through now (the health check's question)."""
        try:
            self.set_meta("last_health_check", iso(datetime.now(UTC)) or "")
        except StorageError:
            return False
        return True
