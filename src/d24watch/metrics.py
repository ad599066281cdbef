"""Prometheus metrics of one daemon, in a registry of its own (the only prometheus-client import).
Counters follow what the jobs report; gauges are refreshed from the database after each job."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from d24watch.deliver.dispatch import DeliveryReport
from d24watch.models import SourceReport

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.polls = Counter(
            "d24watch_polls", "Source polls by outcome (ok, not_modified, error).", ["source", "outcome"], registry=r
        )
        self.articles = Counter("d24watch_articles_stored", "New articles stored (originals).", ["source"], registry=r)
        self.duplicates = Counter("d24watch_duplicates", "Items recognised as duplicates.", ["source"], registry=r)
        self.revisions = Counter("d24watch_revisions", "Stored articles whose text changed.", ["source"], registry=r)
        self.matches = Counter("d24watch_entity_matches", "Articles newly matched, per entity.", ["entity"], registry=r)
        self.hits = Counter("d24watch_hits", "Hits recorded (every occurrence), per source.", ["source"], registry=r)
        self.deliveries = Counter(
            "d24watch_deliveries",
            "Delivery attempts by channel and outcome (sent, failed).",
            ["channel", "outcome"],
            registry=r,
        )
        self.pending = Gauge(
            "d24watch_deliveries_pending", "Deliveries not yet accepted by their receiver.", registry=r
        )
        self.failing = Gauge("d24watch_deliveries_failing", "Pending deliveries whose last attempt failed.", registry=r)
        self.sent = Gauge("d24watch_deliveries_sent", "Deliveries accepted, all time.", registry=r)
        self.stored = Gauge("d24watch_articles", "Articles in the database (originals).", registry=r)
        self.sources_failing = Gauge("d24watch_sources_failing", "Sources whose last poll failed.", registry=r)
        self.timestamps_waiting = Gauge(
            "d24watch_timestamps_waiting", "Archived records still waiting for a TSA token.", registry=r
        )
        self.cycle = Histogram(
            "d24watch_cycle_duration_seconds",
            "Duration of one poll cycle over the due sources.",
            buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
            registry=r,
        )
        self.kind_polls = Counter(
            "d24watch_kind_polls",
            "Source polls per source kind, by outcome (ok, not_modified, error).",
            ["kind", "outcome"],
            registry=r,
        )
        self.kind_found = Counter(
            "d24watch_kind_items_found", "Items the sources of each kind listed (new or not).", ["kind"], registry=r
        )
        self.links = Counter(
            "d24watch_aggregator_links",
            "Aggregator item links by outcome (resolved to the publisher's, unresolved for now).",
            ["kind", "outcome"],
            registry=r,
        )
        self.job_errors = Counter("d24watch_job_errors", "Jobs that raised an exception.", ["job"], registry=r)
        self.jobs_skipped = Counter(
            "d24watch_jobs_skipped",
            "Job runs skipped because the previous run had not finished or was late.",
            ["job"],
            registry=r,
        )

    def source(self, report: SourceReport) -> None:
        outcome = "error" if not report.ok else "not_modified" if report.not_modified else "ok"
        self.polls.labels(report.name, outcome).inc()
        self.kind_polls.labels(report.kind, outcome).inc()
        if report.ok:
            self.kind_found.labels(report.kind).inc(report.found)
            self.links.labels(report.kind, "resolved").inc(report.resolved)
            self.links.labels(report.kind, "unresolved").inc(report.unresolved)
            self.articles.labels(report.name).inc(report.new)
            self.duplicates.labels(report.name).inc(report.duplicates)
            self.revisions.labels(report.name).inc(report.revisions)
            self.hits.labels(report.name).inc(report.hits)
            for entity, articles in report.articles_per_entity:
                self.matches.labels(entity).inc(articles)

    def delivered(self, report: DeliveryReport) -> None:
        for channel, sent in report.sent_by_channel.items():
            self.deliveries.labels(channel, "sent").inc(sent)
        for channel, failed in report.failed_by_channel.items():
            self.deliveries.labels(channel, "failed").inc(failed)

    def state(self, counts: Mapping[str, int]) -> None:
        self.pending.set(counts["pending"])
        self.failing.set(counts["failing"])
        self.sent.set(counts["sent"])
        self.stored.set(counts["articles"])
        self.sources_failing.set(counts["sources_failing"])
        self.timestamps_waiting.set(counts.get("timestamps_waiting", 0))

    def render(self) -> bytes:
        return generate_latest(self.registry)
