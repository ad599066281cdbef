"""The composition root: builds the objects a command needs from the Config and runs it. The one
place where concrete classes are chosen."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

from d24watch.config import Config, SourceConfig, load_config
from d24watch.dedupe import canonical_url, signature, text_hash
from d24watch.deliver.dispatch import DeliveryReport, Dispatcher, Sender, open_senders
from d24watch.deliver.render import Payload, article_fields, entities_payload
from d24watch.errors import ConfigError
from d24watch.evidence import Archive, Snapshot
from d24watch.fetch import Fetcher
from d24watch.match import Matcher
from d24watch.models import SourceReport
from d24watch.pipeline import Pipeline, queue_deliveries
from d24watch.recheck import Rechecker, RecheckReport
from d24watch.store import Store, iso, parse_iso
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
    def load(cls, config_path: Path) -> App:
        config = load_config(config_path)
        return cls(config, load_watchlist(config.watchlist))

    @contextmanager
    def store(self, *, migrate: bool = False) -> Iterator[Store]:
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

    # -- init --------------------------------------------------------------------------------

    def init(self) -> tuple[int, int]:
        """Create or migrate the database and import the seed corpus once: (migrations, seeds)."""
        with self.store(migrate=True) as store:
            ran = store.version()
            imported = 0
            if store.get_meta("seeds_imported") is None:
                imported = import_seeds(store, self.matcher(), self.clock())
            return ran, imported

    # -- poll --------------------------------------------------------------------------------

    def poll(
        self,
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
        sources = [s for s in self.config.sources if s.enabled and (only is None or s.name == only)]
        if only is not None and not sources:
            raise ConfigError(str(self.config.path), "sources", f"no enabled source is named {only!r}")
        with self.store() as store:
            now = self.clock()
            store.sync_sources(((s.name, s.kind, s.url) for s in self.config.sources), now)
            if due_only:
                due = set(store.due_sources((s.name for s in sources), now))
                sources = [s for s in sources if s.name in due]
            if due_only and not sources:
                return [], DeliveryReport()
            if workers is not None:
                return asyncio.run(self._poll(store, workers, sources, progress, cancel))
            with Workers(self.config.fetch.extract_workers) as own:
                return asyncio.run(self._poll(store, own, sources, progress, cancel))

    async def _poll(
        self,
        store: Store,
        workers: Workers,
        sources: list[SourceConfig],
        progress: Callable[[SourceReport], None] | None,
        cancel: threading.Event | None = None,
    ) -> tuple[list[SourceReport], DeliveryReport]:
        watcher = asyncio.create_task(_cancel_when_set(cancel, asyncio.current_task())) if cancel else None
        try:
            return await self._cycle(store, workers, sources, progress)
        finally:
            if watcher is not None:
                watcher.cancel()

    async def _cycle(
        self,
        store: Store,
        workers: Workers,
        sources: list[SourceConfig],
        progress: Callable[[SourceReport], None] | None,
    ) -> tuple[list[SourceReport], DeliveryReport]:
        async with open_senders(self.config) as senders:
            dispatcher = self.dispatcher(store, senders)
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
                pipeline = Pipeline(
                    self.config,
                    store,
                    self.matcher(),
                    workers,
                    clock=self.clock,
                    on_queued=wake.set,
                    archive=self.archive(),
                )
                reports = await pipeline.poll(sources, progress) if sources else []
            except asyncio.CancelledError:
                task.cancel()
                raise
            finished = True
            wake.set()  # one last round: retries that came due during the cycle
            await task
            return reports, delivered

    def archive(self) -> Archive:
        """WARC files beside the database, in the state folder."""
        return Archive(self.config.database.parent / "warc")

    # -- evidence ----------------------------------------------------------------------------

    def recheck(self, workers: Workers | None = None) -> tuple[RecheckReport, DeliveryReport]:
        """Fetch again every article whose re-check is due; deliver what changed like a poll."""
        with self.store() as store:
            due = store.due_rechecks(self.clock())
            if not due:
                return RecheckReport(), DeliveryReport()

            async def run(pool: Workers) -> tuple[RecheckReport, DeliveryReport]:
                async with Fetcher(self.config.fetch) as fetcher:
                    checker = Rechecker(self.config, store, self.matcher(), pool, self.archive(), clock=self.clock)
                    report = await checker.run(fetcher, due)
                return report, await self.send(store, mode="immediate")

            if workers is not None:
                return asyncio.run(run(workers))
            with Workers(1) as own:
                return asyncio.run(run(own))

    def evidence(self, url: str, out: Path) -> dict[str, Any]:
        """Write one article's WARC records, text revisions and hits into `out`; a manifest of what
        was written, with each file's SHA-256."""
        with self.store() as store:
            row = store.find_article(url) or store.find_article(canonical_url(url))
            if row is None:
                raise ConfigError(url, "", "no stored article has this URL (see `d24watch search`)")
            out.mkdir(parents=True, exist_ok=True)
            archive = self.archive()
            records = store.evidence_of(int(row["id"]))
            files: dict[str, bytes] = {}
            files["records.warc.gz"] = b"".join(
                archive.record_bytes(Snapshot(r["warc_file"], r["warc_offset"], r["warc_length"], r["sha256"]))
                for r in records
            )
            for revision in store.revisions_of(int(row["id"])):
                header = (
                    f"{revision['title']}\n{row['url']}\nfetched {revision['fetched_at']} ({revision['reason']})\n\n"
                )
                files[f"revision-{revision['revision']:03d}.txt"] = (header + revision["text"] + "\n").encode()
            record = self.article_record(store, row)
            record["snapshots"] = [
                {k: r[k] for k in ("url", "fetched_at", "status", "sha256", "reason", "warc_file")} for r in records
            ]
            record["events"] = store.events_of(int(row["id"]))
            files["article.json"] = json.dumps(record, ensure_ascii=False, indent=2).encode()
            manifest = {}
            for name, data in files.items():
                (out / name).write_bytes(data)
                manifest[name] = hashlib.sha256(data).hexdigest()
            (out / "SHA256SUMS").write_text("".join(f"{h}  {n}\n" for n, h in manifest.items()))
            return {"url": row["url"], "snapshots": len(records), "files": manifest}

    def state_counts(self) -> dict[str, int]:
        """What the metrics' gauges show: deliveries by state, articles, failing sources."""
        with self.store() as store:
            counts = store.delivery_counts()
            counts["articles"] = store.count("articles", "duplicate_of IS NULL AND source != 'seed'")
            counts["sources_failing"] = len(store.failing_sources())
            return counts

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

    # -- deliveries --------------------------------------------------------------------------

    async def send(self, store: Store, *, mode: str | None = None) -> DeliveryReport:
        """Send the due deliveries of the channels in `mode` (all channels when None)."""
        async with open_senders(self.config) as senders:
            dispatcher = self.dispatcher(store, senders)
            return await dispatcher.deliver(dispatcher.channel_names(mode))

    def deliver(self) -> tuple[DeliveryReport, int]:
        """Retry pending deliveries whose back-off has passed: (report, still failing)."""
        with self.store() as store:
            report = asyncio.run(self.send(store))
            return report, store.delivery_counts()["failing"]

    def digest(self) -> DeliveryReport:
        """Close a digest for each digest channel and send every digest still pending, whatever its
        back-off: someone asked for it now."""

        async def run(store: Store) -> DeliveryReport:
            async with open_senders(self.config) as senders:
                dispatcher = self.dispatcher(store, senders)
                dispatcher.batch_digests()
                return await dispatcher.deliver(dispatcher.channel_names("digest"), due_only=False, event="digest")

        with self.store() as store:
            return asyncio.run(run(store))

    def preview_digests(self) -> list[tuple[str, Payload]]:
        """(channel, payload) of the digest each digest channel would get now; nothing is marked."""
        with self.store() as store:
            dispatcher = self.dispatcher(store, {})
            out = []
            for name in dispatcher.channel_names("digest"):
                payload = dispatcher.preview_digest(name)
                if payload is not None:
                    out.append((name, payload))
            return out

    def enabled_sources(self) -> list[SourceConfig]:
        return [s for s in self.config.sources if s.enabled]

    # -- reading -----------------------------------------------------------------------------

    def export(self, out: TextIO, since: datetime | None = None, progress: Callable[[int], None] | None = None) -> int:
        count = 0
        with self.store() as store:
            for row in store.iter_articles(since):
                out.write(json.dumps(self.article_record(store, row), ensure_ascii=False) + "\n")
                count += 1
                if progress is not None and count % 500 == 0:
                    progress(count)
        return count

    def article_record(self, store: Store, row: dict[str, Any]) -> dict[str, Any]:
        duplicate_of = row["duplicate_of"]
        return {
            **article_fields(row),
            "fetched_at": row["fetched_at"],
            "text": row["text"],
            "duplicate_of": store.article_url(duplicate_of) if duplicate_of else None,
            "entities": entities_payload(self.watchlist, store.hits_for(row["id"])),
        }

    # -- rematch -----------------------------------------------------------------------------

    def rematch(
        self, since: datetime | None = None, progress: Callable[[int], None] | None = None
    ) -> tuple[int, int, DeliveryReport]:
        """Run the current watchlist over stored originals; record entities an article did not
        match before and deliver them like a poll. Returns (articles read, articles with new
        entities, what immediate channels were sent)."""
        matcher = self.matcher()
        read = changed = 0
        with self.store() as store:
            batch: list[dict[str, Any]] = []

            def flush() -> None:
                nonlocal changed
                now = self.clock()
                with store.transaction():
                    for row in batch:
                        before = store.entities_of(row["id"])
                        matches = [m for m in matcher.match(row["title"], row["text"]) if m.entity_id not in before]
                        if not matches:
                            continue
                        for m in matches:
                            store.record_hits(row["id"], row["revision"], m.entity_id, m.hits, now)
                        if row["source"] != "seed":
                            queue_deliveries(
                                store,
                                self.config.channels,
                                matcher,
                                row["id"],
                                [m.entity_id for m in matches],
                                "mention",
                                now,
                            )
                        changed += 1
                batch.clear()

            for row in list(store.iter_articles(since, originals_only=True)):
                batch.append(row)
                read += 1
                if len(batch) >= 200:
                    flush()
                    if progress:
                        progress(read)
            flush()

            delivered = asyncio.run(self.send(store, mode="immediate")) if changed else DeliveryReport()
        return read, changed, delivered


async def _cancel_when_set(flag: threading.Event, task: asyncio.Task[Any] | None) -> None:
    while not flag.is_set():
        await asyncio.sleep(0.1)
    if task is not None:
        task.cancel()


SEED_PREFIX = "urn:d24watch:seed:"


def seed_documents() -> list[tuple[str, str]]:
    """(name, text) of the bundled seed corpus, in order."""
    folder = resources.files("d24watch") / "seeds"
    return sorted(
        (p.name.removesuffix(".txt"), p.read_text(encoding="utf-8"))
        for p in folder.iterdir()
        if p.name.endswith(".txt")
    )


def _seed_titles() -> dict[str, str]:
    """Titles of the seed documents, from the table in the bundled seeds/README.md."""
    readme = (resources.files("d24watch") / "seeds" / "README.md").read_text(encoding="utf-8")
    titles = {}
    for line in readme.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].endswith(".txt"):
            titles[cells[0].removesuffix(".txt")] = cells[1]
    return titles


def import_seeds(store: Store, matcher: Matcher, now: datetime) -> int:
    """Store the seed documents as already seen: they dedupe later reprints and never alert."""
    count = 0
    titles = _seed_titles()
    with store.transaction():
        for name, raw in seed_documents():
            url = SEED_PREFIX + name
            if store.seen_item("seed", url, None) is not None:
                continue
            text = raw.strip()
            title = titles.get(name, name)
            row = {
                "source": "seed",
                "url": url,
                "canonical_url": url,
                "guid": name,
                "title": title,
                "author": None,
                "published_at": None,
                "fetched_at": iso(now),
                "language": "en",
                "text": text,
                "text_hash": text_hash(text),
            }
            article_id = store.insert_article(row, signature(text))
            for match in matcher.match(title, text):
                store.record_hits(article_id, 1, match.entity_id, match.hits, now)
            count += 1
        store.set_meta("seeds_imported", iso(now) or "")
    return count


def parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = parse_iso(value)
    except ValueError:
        raise ConfigError("--since", "", f"{value!r} is not an ISO date or time (e.g. 2024-05-01)") from None
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def print_reports(reports: list[SourceReport], out: TextIO = sys.stdout) -> None:
    for report in reports:
        out.write(summary_line(report) + "\n")


def summary_line(report: SourceReport) -> str:
    if not report.ok:
        return f"{report.name}: failed: {report.error}"
    if report.not_modified:
        return f"{report.name}: unchanged (304)"
    parts = [f"{report.new} new", f"{report.duplicates} duplicate{'s' if report.duplicates != 1 else ''}"]
    if report.revisions:
        parts.append(f"{report.revisions} revised")
    if report.page_errors:
        parts.append(f"{report.page_errors} page{'s' if report.page_errors != 1 else ''} kept from the feed")
    line = f"{report.name}: " + ", ".join(parts)
    if report.matched_entities:
        line += f"; matched {', '.join(report.matched_entities)}"
    return line
