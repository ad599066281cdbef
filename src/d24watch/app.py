"""The composition root: the Config, the watchlist and the clock, and the one place where the
concrete objects a command needs are built from them (store, matcher, workers, archive, senders,
pipeline, re-checker, dispatcher). It runs nothing itself; the use cases are in commands."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from d24watch.config import Config, load_config
from d24watch.deliver.dispatch import Dispatcher, Sender, open_senders
from d24watch.evidence import Archive
from d24watch.match import Matcher
from d24watch.pipeline import Pipeline
from d24watch.recheck import Rechecker
from d24watch.store import Store
from d24watch.watchlist import Watchlist, load_watchlist
from d24watch.workers import Workers


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class App:
    config: Config
    watchlist: Watchlist
    clock: Callable[[], datetime] = utc_now

    @classmethod
    def load(cls, config_path: Path, *, environ: Mapping[str, str] | None = None) -> App:
        config = load_config(config_path, environ=environ)
        return cls(config, load_watchlist(config.watchlist))

    @contextmanager
    def store(self, *, migrate: bool = False) -> Iterator[Store]:
        """The database, migrated first (init) or required to be at this schema version."""
        store = Store(self.config.database)
        try:
            if migrate:
                store.migrate()
            else:
                store.require_schema()
            yield store
        finally:
            store.close()

    def matcher(self) -> Matcher:
        return Matcher(self.watchlist)

    def workers(self, size: int | None = None) -> Workers:
        return Workers(self.config.fetch.extract_workers if size is None else size)

    def archive(self) -> Archive:
        """WARC files beside the database, in the state folder."""
        info = {"config-sha256": self.config.fingerprint()}
        if self.config.operator:
            info["operator"] = self.config.operator
        return Archive(self.config.database.parent / "warc", info)

    @asynccontextmanager
    async def senders(self) -> AsyncIterator[dict[str, Sender]]:
        async with open_senders(self.config) as senders:
            yield senders

    def dispatcher(self, store: Store, senders: Mapping[str, Sender]) -> Dispatcher:
        return Dispatcher(
            store,
            self.watchlist,
            self.config.channels,
            senders,
            clock=self.clock,
            retry_initial=self.config.retry_initial,
            retry_max=self.config.retry_max,
        )

    def pipeline(self, store: Store, workers: Workers, on_queued: Callable[[], None] | None = None) -> Pipeline:
        return Pipeline(
            self.config,
            store,
            self.matcher(),
            workers,
            clock=self.clock,
            on_queued=on_queued,
            archive=self.archive(),
        )

    def rechecker(self, store: Store, workers: Workers) -> Rechecker:
        return Rechecker(self.config, store, self.matcher(), workers, self.archive(), clock=self.clock)
