"""The use cases behind the commands and the daemon's jobs, each a function of the App: init with
the seed corpus, a poll cycle with its courier, re-checks, deliveries and digests, rematch, export
and status. They open what the App builds, run it, and return what happened; printing is the
command line's."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO, TypeVar

from d24watch.alerts import plan_alerts
from d24watch.app import App
from d24watch.channels import Mode
from d24watch.config import SourceConfig
from d24watch.deliver.dispatch import DeliveryReport
from d24watch.deliver.payload import Payload
from d24watch.errors import ConfigError
from d24watch.fetch import Fetcher
from d24watch.models import EntityMatch, SourceReport
from d24watch.recheck import RecheckReport
from d24watch.records import article_record
from d24watch.seeds import import_seeds
from d24watch.stamping import StampReport, stamp_pending
from d24watch.store import Store
from d24watch.store.rows import Article, DeliveryCounts, FailingDelivery, SourceRow
from d24watch.workers import Workers, match_batch

REMATCH_BATCH = 200  # articles per worker task
T = TypeVar("T")


def init(app: App) -> tuple[int, int]:
    """Create or migrate the database and import the seed corpus once: (schema version, seeds)."""
    with app.store(migrate=True) as store:
        version = store.version()
        imported = 0
        if store.get_meta("seeds_imported") is None:
            imported = import_seeds(store, app.matcher(), app.clock())
        return version, imported


# -- poll --------------------------------------------------------------------------------------


def stamp(app: App) -> StampReport:
    """Timestamp every archived record still without a token (when [evidence] tsa_url is set)."""
    with app.store() as store:
        return asyncio.run(stamp_pending(app.config, store, app.archive(), app.clock))


def poll(
    app: App,
    only: str | None = None,
    *,
    due_only: bool = False,
    progress: Callable[[SourceReport], None] | None = None,
    cancel: threading.Event | None = None,
    workers: Workers | None = None,
) -> tuple[list[SourceReport], DeliveryReport]:
    """One cycle over the enabled sources (or the one named), with immediate deliveries sent as
    soon as each source's update is committed. Setting `cancel` ends the cycle early by raising
    asyncio.CancelledError; each source's update is one transaction, so none is half-stored."""
    config = app.config
    sources = [s for s in config.sources if s.enabled and (only is None or s.name == only)]
    if only is not None and not sources:
        raise ConfigError(str(config.path), "sources", f"no enabled source is named {only!r}")
    with app.store() as store:
        now = app.clock()
        store.sync_sources(((s.name, s.kind, s.url) for s in config.sources), now)
        if due_only:
            due = set(store.due_sources((s.name for s in sources), now))
            sources = [s for s in sources if s.name in due]
            if not sources:
                return [], DeliveryReport()
        if workers is not None:
            return asyncio.run(_until_cancelled(_cycle(app, store, workers, sources, progress), cancel))
        with app.workers() as own:
            return asyncio.run(_until_cancelled(_cycle(app, store, own, sources, progress), cancel))


async def _until_cancelled(work: Coroutine[Any, Any, T], cancel: threading.Event | None) -> T:
    """`work`, cancelled as soon as `cancel` is set (checked ten times a second)."""
    if cancel is None:
        return await work
    task = asyncio.current_task()

    async def watch() -> None:
        while not cancel.is_set():
            await asyncio.sleep(0.1)
        if task is not None:
            task.cancel()

    watcher = asyncio.create_task(watch())
    try:
        return await work
    finally:
        watcher.cancel()


async def _cycle(
    app: App,
    store: Store,
    workers: Workers,
    sources: list[SourceConfig],
    progress: Callable[[SourceReport], None] | None,
) -> tuple[list[SourceReport], DeliveryReport]:
    """The poll, and beside it a courier that sends immediate deliveries whenever a source's
    commit queued some."""
    async with app.senders() as senders:
        dispatcher = app.dispatcher(store, senders)
        immediate = dispatcher.channel_names("immediate")
        delivered = DeliveryReport()
        wake = asyncio.Event()
        finished = False

        async def courier() -> None:
            while True:
                await wake.wait()
                wake.clear()
                delivered.add(await dispatcher.deliver(immediate))
                if finished and not wake.is_set():
                    return

        task = asyncio.create_task(courier())
        try:
            pipeline = app.pipeline(store, workers, on_queued=wake.set)
            reports = await pipeline.poll(sources, progress) if sources else []
        except asyncio.CancelledError:
            task.cancel()
            raise
        finished = True
        wake.set()  # one last round: retries that came due during the cycle
        await task
        return reports, delivered


# -- evidence and deliveries -------------------------------------------------------------------


def recheck(app: App, workers: Workers | None = None) -> tuple[RecheckReport, DeliveryReport]:
    """Fetch again every article whose re-check is due; deliver what changed like a poll."""
    with app.store() as store:
        due = store.due_rechecks(app.clock())
        if not due:
            return RecheckReport(), DeliveryReport()

        async def run(pool: Workers) -> tuple[RecheckReport, DeliveryReport]:
            async with Fetcher(app.config.fetch) as fetcher:
                report = await app.rechecker(store, pool).run(fetcher, due)
            return report, await send(app, store, mode="immediate")

        if workers is not None:
            return asyncio.run(run(workers))
        with app.workers(1) as own:
            return asyncio.run(run(own))


async def send(app: App, store: Store, *, mode: Mode | None = None) -> DeliveryReport:
    """Send the due deliveries of the channels in `mode` (all channels when None)."""
    async with app.senders() as senders:
        dispatcher = app.dispatcher(store, senders)
        return await dispatcher.deliver(dispatcher.channel_names(mode))


def deliver(app: App) -> tuple[DeliveryReport, int]:
    """Retry pending deliveries whose back-off has passed: (report, still failing)."""
    with app.store() as store:
        report = asyncio.run(send(app, store))
        return report, store.delivery_counts().failing


def digest(app: App) -> DeliveryReport:
    """Close a digest for each digest channel and send every digest still pending, whatever its
    back-off: someone asked for it now."""

    async def run(store: Store) -> DeliveryReport:
        async with app.senders() as senders:
            dispatcher = app.dispatcher(store, senders)
            dispatcher.batch_digests()
            return await dispatcher.deliver(dispatcher.channel_names("digest"), due_only=False, digests_only=True)

    with app.store() as store:
        return asyncio.run(run(store))


def preview_digests(app: App) -> list[tuple[str, Payload]]:
    """(channel, payload) of the digest each digest channel would get now; nothing is marked."""
    with app.store() as store:
        dispatcher = app.dispatcher(store, {})
        out = []
        for name in dispatcher.channel_names("digest"):
            payload = dispatcher.preview_digest(name)
            if payload is not None:
                out.append((name, payload))
        return out


# -- the corpus --------------------------------------------------------------------------------


def export(app: App, out: TextIO, since: datetime | None = None, progress: Callable[[int], None] | None = None) -> int:
    """Every stored article (fetched since `since`) as one JSON line, oldest first; how many."""
    count = 0
    with app.store() as store:
        for row in store.iter_articles(since):
            out.write(json.dumps(article_record(store, app.watchlist, row), ensure_ascii=False) + "\n")
            count += 1
            if progress is not None and count % 500 == 0:
                progress(count)
    return count


def rematch(
    app: App, since: datetime | None = None, progress: Callable[[int, int], None] | None = None
) -> tuple[int, int, DeliveryReport]:
    """Run the current watchlist over stored originals, in batches across the worker processes;
    record the entities an article did not match before and deliver them like a poll. Returns
    (articles read, articles with new entities, what immediate channels were sent). `progress` is
    told (done, total) after each batch."""
    with app.store() as store, app.workers() as workers:
        total = store.count_articles(since=since)
        read, changed = asyncio.run(_rematch(app, store, workers, since, total, progress))
        delivered = asyncio.run(send(app, store, mode="immediate")) if changed else DeliveryReport()
    return read, changed, delivered


async def _rematch(
    app: App,
    store: Store,
    workers: Workers,
    since: datetime | None,
    total: int,
    progress: Callable[[int, int], None] | None,
) -> tuple[int, int]:
    path = str(app.config.watchlist)
    done = changed = 0
    in_flight: set[asyncio.Task[tuple[list[Article], list[list[EntityMatch]]]]] = set()

    async def match(rows: list[Article]) -> tuple[list[Article], list[list[EntityMatch]]]:
        found = await workers.run("rematch", match_batch, path, [(r.title, r.text) for r in rows])
        return rows, found

    def record(finished: set[asyncio.Task[tuple[list[Article], list[list[EntityMatch]]]]]) -> None:
        nonlocal done, changed
        now = app.clock()
        with store.transaction():
            for task in finished:
                rows, found = task.result()
                for row, matches in zip(rows, found, strict=True):
                    plan = plan_alerts(
                        "rematch",
                        article_id=row.id,
                        matches=matches,
                        had=store.entities_of(row.id),
                        channels=app.config.channels,
                        watchlist=app.watchlist,
                        is_seed=row.source == "seed",
                    )
                    if plan.hits:
                        store.apply_alerts(row.id, row.revision, plan, now)
                        changed += 1
                done += len(rows)
        if progress is not None:
            progress(done, total)

    batch: list[Article] = []
    for row in store.iter_articles(since, originals_only=True):
        batch.append(row)
        if len(batch) < REMATCH_BATCH:
            continue
        in_flight.add(asyncio.create_task(match(batch)))
        batch = []
        if len(in_flight) >= 2 * workers.size:
            finished, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            record(finished)
    if batch:
        in_flight.add(asyncio.create_task(match(batch)))
    if in_flight:
        finished, _ = await asyncio.wait(in_flight)
        record(finished)
    return done, changed


# -- state -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Status:
    sources: dict[str, SourceRow]
    deliveries: DeliveryCounts
    failing: list[FailingDelivery]
    articles: int
    duplicates: int
    timestamps: tuple[int, int] = (0, 0)  # records with a token, records waiting for one


def status(app: App) -> Status:
    with app.store() as store:
        return Status(
            sources={r.name: r for r in store.source_rows()},
            deliveries=store.delivery_counts(),
            failing=store.failing_deliveries(),
            articles=store.count_articles(),
            duplicates=store.count_articles(duplicates=True),
            timestamps=store.timestamp_counts(),
        )


def state_counts(app: App) -> dict[str, int]:
    """What the metrics' gauges show: deliveries by state, articles, failing sources."""
    with app.store() as store:
        counts = store.delivery_counts()
        return {
            "sent": counts.sent,
            "pending": counts.pending,
            "failing": counts.failing,
            "articles": store.count_articles(seeds=False),
            "sources_failing": len(store.failing_sources()),
            "timestamps_waiting": store.timestamp_counts()[1],
        }
