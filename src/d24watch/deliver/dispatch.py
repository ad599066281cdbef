"""Sending what the outbox holds: lease the due deliveries, render each payload once (retries send
the same bytes), send, and record the answer. A channel that fails is not tried again in the same
run; its deliveries wait for their back-off. Nothing is removed from the outbox: done is a status."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, cast

import httpx

from d24watch.channels import ChannelConfig, EmailChannel, Mode, SlackChannel, WebhookChannel
from d24watch.config import Config
from d24watch.deliver.email import EmailSender
from d24watch.deliver.file import FileSender
from d24watch.deliver.payload import (
    ArticlePayload,
    Change,
    DigestRow,
    Payload,
    alert_payload,
    article_fields,
    digest_payload,
    entities_payload,
    failing_source_payload,
)
from d24watch.deliver.plan import digest_delivery_id, retry_delay
from d24watch.deliver.slack import SlackSender
from d24watch.deliver.webhook import WebhookSender
from d24watch.errors import DeliveryError
from d24watch.models import EventRef
from d24watch.secret import redact
from d24watch.store import Store, iso
from d24watch.store.rows import Article, DigestLine, OutboxRow
from d24watch.watchlist import Watchlist

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)  # longer than any one send may take; a killed sender's lease runs out


class Sender(Protocol):
    async def send(self, payload: Payload) -> None: ...


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    deferred: int = 0  # not tried: their channel had just failed
    errors: list[str] = field(default_factory=list)
    sent_by_channel: dict[str, int] = field(default_factory=dict)
    failed_by_channel: dict[str, int] = field(default_factory=dict)

    def add(self, other: DeliveryReport) -> None:
        self.sent += other.sent
        self.failed += other.failed
        self.deferred += other.deferred
        self.errors.extend(other.errors)
        for mine, theirs in (
            (self.sent_by_channel, other.sent_by_channel),
            (self.failed_by_channel, other.failed_by_channel),
        ):
            for channel, count in theirs.items():
                mine[channel] = mine.get(channel, 0) + count


@asynccontextmanager
async def open_senders(config: Config) -> AsyncIterator[dict[str, Sender]]:
    """A sender per configured channel, sharing one HTTP client that follows no redirects."""
    async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as client:
        yield {c.name: make_sender(c, client, config.fetch.user_agent) for c in config.channels}


def make_sender(channel: ChannelConfig, client: httpx.AsyncClient, user_agent: str) -> Sender:
    if isinstance(channel, WebhookChannel):
        return WebhookSender(channel, client, user_agent)
    if isinstance(channel, SlackChannel):
        return SlackSender(channel, client, user_agent)
    if isinstance(channel, EmailChannel):
        return EmailSender(channel)
    return FileSender(channel)


class Dispatcher:
    def __init__(
        self,
        store: Store,
        watchlist: Watchlist,
        channels: Sequence[ChannelConfig],
        senders: Mapping[str, Sender],
        *,
        clock: Callable[[], datetime],
        retry_initial: timedelta,
        retry_max: timedelta,
    ) -> None:
        self.store = store
        self.watchlist = watchlist
        self.channels = {c.name: c for c in channels}
        self.senders = senders
        self.clock = clock
        self.retry_initial = retry_initial
        self.retry_max = retry_max

    def channel_names(self, mode: Mode | None = None) -> list[str]:
        return [name for name, c in self.channels.items() if mode is None or c.mode == mode]

    # -- digests -----------------------------------------------------------------------------

    def batch_digests(self) -> int:
        """Close one digest per digest channel over everything it has not yet been sent."""
        made = 0
        for name in self.channel_names("digest"):
            now = self.clock()
            if self.store.batch_digest(name, digest_delivery_id(name, iso(now) or ""), now) is not None:
                made += 1
        return made

    def preview_digest(self, channel: str) -> Payload | None:
        """The digest `channel` would get now, with nothing marked (for --dry-run)."""
        lines = self.store.pending_digest(channel)
        if not lines:
            return None
        return self._digest(f"preview-{channel}", iso(self.clock()) or "", lines)

    def _digest(self, delivery_id: str, created_at: str, lines: Iterable[DigestLine]) -> Payload:
        articles: dict[int, ArticlePayload] = {}
        rows: list[DigestRow] = []
        for line in lines:
            if line.article_id not in articles:
                article = self.store.article(line.article_id)
                if article is None:
                    continue
                articles[line.article_id] = article_fields(article)
            hits = self.store.hits_for(line.article_id, [line.entity_id])
            rows.append(
                (
                    line.event.kind,
                    line.created_at,
                    articles[line.article_id],
                    entities_payload(self.watchlist, hits),
                    self._change(line.event),
                )
            )
        failing = [failing_source_payload(s) for s in self.store.failing_sources()]
        return digest_payload(delivery_id, created_at, self.watchlist, rows, failing)

    # -- sending -----------------------------------------------------------------------------

    def compose(self, row: OutboxRow) -> Payload:
        """The payload of an outbox row: the one saved at its first attempt, or a new one."""
        if row.payload:
            return cast(Payload, json.loads(row.payload))
        payload: Payload
        if row.event is None:
            payload = self._digest(row.delivery_id, row.created_at, self.store.batch_lines(row.id))
        else:
            article = self.store.article(row.article_id or 0)
            if article is None:
                raise DeliveryError(f"article {row.article_id} is no longer stored")
            payload = self._alert(row, row.event, article)
        self.store.save_payload(row.id, json.dumps(payload, ensure_ascii=False))
        return payload

    def _alert(self, row: OutboxRow, event: EventRef, article: Article) -> Payload:
        hits = self.store.hits_for(article.id, row.entities)
        return alert_payload(
            event.kind,
            row.delivery_id,
            row.created_at,
            article_fields(article),
            entities_payload(self.watchlist, hits),
            self._change(event),
        )

    def _change(self, event: EventRef) -> Change | None:
        """What an article event found (an edit or a takedown); None for a mention."""
        return cast(Change, self.store.event_detail(event.event_id)) if event.event_id is not None else None

    async def deliver(
        self, channels: Iterable[str] | None = None, *, due_only: bool = True, digests_only: bool = False
    ) -> DeliveryReport:
        """Send the pending deliveries of `channels` (default: all) whose back-off has passed (or
        all of them, when `due_only` is false); channels are served side by side."""
        names = [n for n in (self.channel_names() if channels is None else channels) if n in self.senders]
        rows = self.store.claim_deliveries(
            self.clock(), names, lease=LEASE, due_only=due_only, digests_only=digests_only
        )
        by_channel: dict[str, list[OutboxRow]] = {}
        for row in rows:
            by_channel.setdefault(row.channel, []).append(row)
        report = DeliveryReport()
        for part in await asyncio.gather(*(self._serve(name, todo) for name, todo in by_channel.items())):
            report.add(part)
        return report

    async def _serve(self, channel: str, rows: list[OutboxRow]) -> DeliveryReport:
        report = DeliveryReport()
        sender = self.senders[channel]
        for index, row in enumerate(rows):
            try:
                payload = self.compose(row)
                await sender.send(payload)
            except DeliveryError as exc:
                self._failed(channel, row, redact(str(exc)), exc.retry_after_s, report)
            except Exception as exc:  # a bug must not stop the other deliveries; it is logged in full
                log.exception("delivery_crashed channel=%s delivery=%s", channel, row.delivery_id)
                self._failed(channel, row, redact(f"{type(exc).__name__}: {exc}"), None, report)
            else:
                self.store.mark_delivered(row.id, self.clock())
                report.sent += 1
                report.sent_by_channel[channel] = report.sent_by_channel.get(channel, 0) + 1
                kind = row.event.kind if row.event else "digest"
                log.info("delivered channel=%s kind=%s delivery=%s", channel, kind, row.delivery_id)
                continue
            for rest in rows[index + 1 :]:
                self.store.release_delivery(rest.id)
                report.deferred += 1
            break
        return report

    def _failed(
        self, channel: str, row: OutboxRow, error: str, retry_after_s: float | None, report: DeliveryReport
    ) -> None:
        failures = row.attempts + 1
        wait = retry_delay(failures, self.retry_initial, self.retry_max, retry_after_s)
        self.store.mark_delivery_failed(row.id, error, self.clock() + wait)
        report.failed += 1
        report.failed_by_channel[channel] = report.failed_by_channel.get(channel, 0) + 1
        report.errors.append(f"{channel}: {error}")
        log.warning(
            "delivery_failed channel=%s delivery=%s attempt=%d error=%s retry_in_s=%d",
            channel,
            row.delivery_id,
            failures,
            error,
            int(wait.total_seconds()),
        )
