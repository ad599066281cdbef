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
from typing import Any, Protocol

import httpx

from d24watch.config import ChannelConfig, Config, redact
from d24watch.deliver.email import EmailSender
from d24watch.deliver.file import FileSender
from d24watch.deliver.outbox import digest_delivery_id, retry_delay
from d24watch.deliver.render import Payload, alert_payload, article_fields, digest_payload, entities_payload
from d24watch.deliver.slack import SlackSender
from d24watch.deliver.webhook import WebhookSender
from d24watch.errors import DeliveryError
from d24watch.store import Store, iso
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
    timeout = float(channel.options.get("timeout", 10))
    if channel.type == "webhook":
        return WebhookSender(client, str(channel.options["url"]), channel.secrets.get("secret"), timeout, user_agent)
    if channel.type == "slack":
        return SlackSender(client, channel.secrets["webhook_url"], timeout, user_agent)
    if channel.type == "email":
        return EmailSender(channel.options, channel.secrets.get("password"))
    return FileSender(channel.options["directory"])


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

    def channel_names(self, mode: str | None = None) -> list[str]:
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

    def _digest(self, delivery_id: str, created_at: str, lines: Iterable[Mapping[str, Any]]) -> Payload:
        articles: dict[int, dict[str, Any]] = {}
        rows: list[tuple[str, str, dict[str, Any], list[dict[str, Any]], dict[str, Any] | None]] = []
        for line in lines:
            article_id = int(line["article_id"])
            if article_id not in articles:
                row = self.store.article(article_id)
                if row is None:
                    continue
                articles[article_id] = article_fields(row)
            hits = self.store.hits_for(article_id, [line["entity_id"]])
            kind, change = self._event(line["event"])
            rows.append(
                (kind, line["created_at"], articles[article_id], entities_payload(self.watchlist, hits), change)
            )
        failing = [
            {
                "name": s["name"],
                "url": redact(s["url"]),
                "error": redact(s["last_error"] or ""),
                "since": s["last_error_at"],
                "errors": s["consecutive_errors"],
            }
            for s in self.store.failing_sources()
        ]
        return digest_payload(delivery_id, created_at, self.watchlist, rows, failing)

    # -- sending -----------------------------------------------------------------------------

    def compose(self, row: Mapping[str, Any]) -> Payload:
        """The payload of an outbox row: the one saved at its first attempt, or a new one."""
        if row["payload"]:
            payload: Payload = json.loads(row["payload"])
            return payload
        if row["event"] == "digest":
            payload = self._digest(row["delivery_id"], row["created_at"], self.store.batch_lines(int(row["id"])))
        else:
            article = self.store.article(int(row["article_id"]))
            if article is None:
                raise DeliveryError(f"article {row['article_id']} is no longer stored")
            hits = self.store.hits_for(int(row["article_id"]), json.loads(row["entities"]))
            kind, change = self._event(row["event"])
            payload = alert_payload(
                kind,
                row["delivery_id"],
                row["created_at"],
                article_fields(article),
                entities_payload(self.watchlist, hits),
                change,
            )
        self.store.save_payload(int(row["id"]), json.dumps(payload, ensure_ascii=False))
        return payload

    def _event(self, event: str) -> tuple[str, dict[str, Any] | None]:
        """`changed:17` names event 17 of article_events: its kind, and what changed."""
        kind, _, ref = event.partition(":")
        return kind, (self.store.event_detail(int(ref)) if ref.isdigit() else None)

    async def deliver(
        self, channels: Iterable[str] | None = None, *, due_only: bool = True, event: str | None = None
    ) -> DeliveryReport:
        """Send the pending deliveries of `channels` (default: all) whose back-off has passed (or
        all of them, when `due_only` is false); channels are served side by side."""
        names = [n for n in (self.channel_names() if channels is None else channels) if n in self.senders]
        rows = self.store.claim_deliveries(self.clock(), names, lease=LEASE, due_only=due_only, event=event)
        by_channel: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_channel.setdefault(row["channel"], []).append(row)
        report = DeliveryReport()
        for part in await asyncio.gather(*(self._serve(name, todo) for name, todo in by_channel.items())):
            report.add(part)
        return report

    async def _serve(self, channel: str, rows: list[dict[str, Any]]) -> DeliveryReport:
        report = DeliveryReport()
        sender = self.senders[channel]
        for index, row in enumerate(rows):
            try:
                payload = self.compose(row)
                await sender.send(payload)
            except DeliveryError as exc:
                self._failed(channel, row, redact(str(exc)), exc.retry_after_s, report)
            except Exception as exc:  # a bug must not stop the other deliveries; it is logged in full
                log.exception("delivery_crashed channel=%s delivery=%s", channel, row["delivery_id"])
                self._failed(channel, row, redact(f"{type(exc).__name__}: {exc}"), None, report)
            else:
                self.store.mark_delivered(int(row["id"]), self.clock())
                report.sent += 1
                report.sent_by_channel[channel] = report.sent_by_channel.get(channel, 0) + 1
                log.info("delivered channel=%s event=%s delivery=%s", channel, row["event"], row["delivery_id"])
                continue
            for rest in rows[index + 1 :]:
                self.store.release_delivery(int(rest["id"]))
                report.deferred += 1
            break
        return report

    def _failed(
        self, channel: str, row: Mapping[str, Any], error: str, retry_after_s: float | None, report: DeliveryReport
    ) -> None:
        failures = int(row["attempts"]) + 1
        wait = retry_delay(failures, self.retry_initial, self.retry_max, retry_after_s)
        self.store.mark_delivery_failed(int(row["id"]), error, self.clock() + wait)
        report.failed += 1
        report.failed_by_channel[channel] = report.failed_by_channel.get(channel, 0) + 1
        report.errors.append(f"{channel}: {error}")
        log.warning(
            "delivery_failed channel=%s delivery=%s attempt=%d error=%s retry_in_s=%d",
            channel,
            row["delivery_id"],
            failures,
            error,
            int(wait.total_seconds()),
        )
