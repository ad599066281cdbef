"""The daemon (the only APScheduler import): a tick job that polls the sources that are due, the
digest on its schedule, retries of pending deliveries, and the workspace with /healthz and /metrics
over HTTP.
SIGTERM or SIGINT stop it within 10 s; a job that raises is logged and counted, and the daemon goes on."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobEvent,
    JobExecutionEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from d24watch import commands
from d24watch.app import App
from d24watch.errors import D24WatchError
from d24watch.metrics import CONTENT_TYPE, Metrics
from d24watch.store import Store, iso
from d24watch.tomlfile import schedule_interval
from d24watch.web import WebServer, create_app

log = logging.getLogger(__name__)

STOP_WITHIN_S = 10.0
JOB_GRACE_S = 7.0  # how long a running job may take to wind down before the process leaves anyway


def clamp(value: timedelta, low_s: float, high_s: float) -> float:
    return max(low_s, min(high_s, value.total_seconds()))


class Daemon:
    def __init__(self, app: App, *, listen: str | None = None) -> None:
        self.app = app
        self.listen = listen or app.config.listen
        self.metrics = Metrics()
        self.stopping = threading.Event()
        self.cancel = threading.Event()  # tells a running poll cycle to end now
        self.running_jobs = 0
        self.lock = threading.Lock()
        self.cycles = 0
        self.last_cycle_at: datetime | None = None
        self.started_at = datetime.now(UTC)
        self.workers = app.workers()
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(4)},
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": 3600},
            timezone=UTC,
        )
        self.httpd: WebServer | None = None
        self.health_timeout_s = 5.0

    # -- schedule ----------------------------------------------------------------------------

    def tick_seconds(self) -> float:
        """How often to look for due sources: a quarter of the shortest interval, 1 to 30 s."""
        intervals = [s.interval for s in self.app.config.sources if s.enabled] or [timedelta(minutes=30)]
        return clamp(min(intervals) / 4, 1, 30)

    def retry_seconds(self) -> float:
        return clamp(self.app.config.retry_initial / 2, 1, 30)

    def recheck_seconds(self) -> float:
        """Re-checks are due days apart: looking every few minutes is enough (sooner for short ones)."""
        shortest = min(self.app.config.recheck, default=timedelta(days=1))
        return clamp(shortest / 4, 1, 600)

    def digest_trigger(self) -> CronTrigger | IntervalTrigger:
        schedule = self.app.config.digest_schedule
        zone = ZoneInfo(self.app.config.digest_timezone)
        every = schedule_interval(schedule)
        if every is not None:
            return IntervalTrigger(seconds=every.total_seconds(), timezone=zone)
        return CronTrigger.from_crontab(schedule, timezone=zone)

    def _schedule(self) -> None:
        now = datetime.now(UTC)
        self.scheduler.add_job(
            self._job(self.poll), IntervalTrigger(seconds=self.tick_seconds()), id="poll", next_run_time=now
        )
        self.scheduler.add_job(self._job(self.digest), self.digest_trigger(), id="digest")
        if self.app.config.tsa_url:
            # Its own job: a TSA that is down or slow never holds up a poll.
            self.scheduler.add_job(self._job(self.stamp), IntervalTrigger(seconds=self.tick_seconds()), id="timestamp")
        self.scheduler.add_job(self._job(self.retry), IntervalTrigger(seconds=self.retry_seconds()), id="deliver")
        self.scheduler.add_job(
            self._job(self.recheck), IntervalTrigger(seconds=self.recheck_seconds()), id="recheck", next_run_time=now
        )
        for job in self.scheduler.get_jobs():
            # Every job's series exists from the start, at 0, so that increase() sees its first error.
            self.metrics.job_errors.labels(job.id)
            self.metrics.jobs_skipped.labels(job.id)
        self.scheduler.add_listener(self._on_error, EVENT_JOB_ERROR)
        self.scheduler.add_listener(self._on_skipped, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)

    def _job(self, body: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            if self.stopping.is_set():
                return
            with self.lock:
                self.running_jobs += 1
            try:
                body()
            finally:
                with self.lock:
                    self.running_jobs -= 1

        run.__name__ = body.__name__
        return run

    def _on_error(self, event: JobExecutionEvent) -> None:
        self.metrics.job_errors.labels(event.job_id).inc()
        log.error("job_failed job=%s error=%r", event.job_id, event.exception, exc_info=event.exception)

    def _on_skipped(self, event: JobEvent) -> None:
        self.metrics.jobs_skipped.labels(event.job_id).inc()
        log.info(
            "job_skipped job=%s reason=%s", event.job_id, "late" if event.code == EVENT_JOB_MISSED else "still_running"
        )

    # -- jobs --------------------------------------------------------------------------------

    def poll(self) -> None:
        started = time.monotonic()
        try:
            reports, delivered = commands.poll(
                self.app, due_only=True, progress=self.metrics.source, cancel=self.cancel, workers=self.workers
            )
        except asyncio.CancelledError:
            log.info("cycle_cancelled reason=%s", "stopping")
            return
        self.metrics.delivered(delivered)
        if reports:
            duration = time.monotonic() - started
            self.metrics.cycle.observe(duration)
            self.cycles += 1
            self.last_cycle_at = datetime.now(UTC)
            log.info(
                "cycle_done sources=%d new=%d failed=%d delivered=%d duration_s=%.1f",
                len(reports),
                sum(r.new for r in reports),
                sum(not r.ok for r in reports),
                delivered.sent,
                duration,
            )
        self.refresh()

    def digest(self) -> None:
        report = commands.digest(self.app)
        self.metrics.delivered(report)
        if report.failed:
            log.warning("digest_failed errors=%s", "; ".join(report.errors))
        elif report.sent:
            log.info("digest_sent digests=%d", report.sent)
        self.refresh()

    def stamp(self) -> None:
        report = commands.stamp(self.app)
        if report.stamped or report.failed:
            log.info("timestamps stamped=%d failed=%d waiting=%d", report.stamped, report.failed, report.waiting)

    def retry(self) -> None:
        report, _ = commands.deliver(self.app)
        self.metrics.delivered(report)
        self.refresh()

    def recheck(self) -> None:
        report, delivered = commands.recheck(self.app)  # a pool of its own: the poll job may be using the shared one
        self.metrics.delivered(delivered)
        if report.checked:
            log.info(
                "recheck_done checked=%d changed=%d removed=%d failed=%d",
                report.checked,
                report.changed,
                report.removed,
                report.failed,
            )

    def refresh(self) -> None:
        self.metrics.state(commands.state_counts(self.app))

    # -- health ------------------------------------------------------------------------------

    def health(self) -> tuple[int, dict[str, Any]]:
        scheduler_ok = self.scheduler.running and not self.stopping.is_set()
        try:
            store = Store(self.app.config.database, busy_timeout_s=self.health_timeout_s)
            try:
                writable = store.check_writable()
            finally:
                store.close()
        except D24WatchError:
            writable = False
        body = {
            "status": "ok" if scheduler_ok and writable else "unhealthy",
            "scheduler": "running" if scheduler_ok else "stopped",
            "database": "writable" if writable else "not writable",
            "cycles": self.cycles,
            "last_cycle_at": iso(self.last_cycle_at),
            "started_at": iso(self.started_at),
        }
        return (200 if body["status"] == "ok" else 503), body

    def _serve(self) -> WebServer:
        """The workspace with /healthz and /metrics, from a thread and an event loop of its own."""
        asgi = create_app(
            self.app, listen=self.listen, health=self.health, metrics=lambda: (self.metrics.render(), CONTENT_TYPE)
        )
        return WebServer(asgi, self.listen).start()

    # -- life --------------------------------------------------------------------------------

    @property
    def address(self) -> str | None:
        """http://HOST:PORT where /healthz answers, once listening."""
        return self.httpd.address if self.httpd is not None else None

    def run(self, *, handle_signals: bool = True) -> int:
        """Serve until SIGTERM or SIGINT (or until `stopping` is set, when run without signals)."""
        self.httpd = self._serve()
        signals = (signal.SIGTERM, signal.SIGINT) if handle_signals else ()
        previous = {sig: signal.signal(sig, self._on_signal) for sig in signals}
        try:
            self._schedule()
            self.scheduler.start()
            log.info(
                "daemon_started listen=%s sources=%d tick_s=%g digest=%s",
                self.address,
                sum(s.enabled for s in self.app.config.sources),
                self.tick_seconds(),
                self.app.config.digest_schedule,
            )
            self.refresh()
            while not self.stopping.wait(0.5):
                pass
            return self._shutdown(leave_stuck_jobs=handle_signals)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("daemon_stopping signal=%s", signal.Signals(signum).name)
        self.stopping.set()

    def _shutdown(self, *, leave_stuck_jobs: bool) -> int:
        deadline = time.monotonic() + JOB_GRACE_S
        self.cancel.set()
        self.scheduler.shutdown(wait=False)
        while time.monotonic() < deadline:
            with self.lock:
                if self.running_jobs == 0:
                    break
            time.sleep(0.05)
        if self.httpd is not None:
            self.httpd.stop()
        with self.lock:
            busy = self.running_jobs
        if busy and leave_stuck_jobs:
            # A job stuck in a blocking call (an SMTP server that does not answer) must not keep the
            # process: every write is a transaction, so leaving now loses nothing committed.
            log.warning("daemon_stopped jobs_abandoned=%d", busy)
            logging.shutdown()
            os._exit(0)
        self.workers.close()
        log.info("daemon_stopped")
        return 0
