"""`d24watch run`: the daemon against local feeds, a local webhook receiver and the file outbox,
with second-scale intervals; signals, health, metrics and a restart after SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from d24watch import commands
from d24watch.app import App
from d24watch.daemon import Daemon
from tests.conftest import write_config
from tests.helpers import d24
from tests.receiver import Receiver
from tests.server import LocalServer, stall
from tests.test_deliver import BINH, DIRECTIVE, _articles, _webhook


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    srv = Receiver().start()
    yield srv
    srv.stop()


def _source(name: str, url: str, interval: str = "2s") -> str:
    return f'\n[[sources]]\nname = "{name}"\nkind = "feed"\nurl = "{url}"\ninterval = "{interval}"\n'


def _daemon_config(tmp_path: Path, sources: str, receiver: Receiver, digest: str = "3s") -> Path:
    extra = _webhook(receiver) + f'\n[digest]\nschedule = "{digest}"\ntimezone = "UTC"\n[log]\nformat = "json"\n'
    return write_config(tmp_path, sources, extra=extra)


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _wait(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"waited {seconds:g} s for {what}")


class Running:
    """`d24watch run` as a child process in its own session, its log in a file."""

    def __init__(self, config: Path, log: Path) -> None:
        self.log = log
        self.handle = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "d24watch", "--config", str(config), "run", "--listen", "127.0.0.1:0"],
            stdout=subprocess.DEVNULL,
            stderr=self.handle,
            start_new_session=True,
        )
        self.base = ""
        _wait(self._started, 60, "the daemon to listen")

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log.read_text("utf-8").splitlines():
            if line.startswith("{"):
                out.append(json.loads(line))
        return out

    def _started(self) -> bool:
        assert self.proc.poll() is None, self.log.read_text("utf-8")
        for event in self.events():
            if event.get("event") == "daemon_started":
                self.base = event["listen"]
                return True
        return False

    def health(self) -> dict[str, Any]:
        status, body = _get(self.base + "/healthz")
        data: dict[str, Any] = json.loads(body)
        data["http_status"] = status
        return data

    def metrics(self) -> str:
        return _get(self.base + "/metrics")[1].decode()

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, float]:
        started = time.monotonic()
        os.killpg(self.proc.pid, sig)
        code = self.proc.wait(timeout=30)
        self.handle.close()
        return code, time.monotonic() - started


def test_run_polls_on_schedule_sends_a_digest_and_stops_cleanly_on_sigterm(
    tmp_path: Path, server: LocalServer, receiver: Receiver, capsys: Any
) -> None:
    """Two cycles and a digest happen; /healthz and /metrics answer; SIGTERM ends it within 10 s."""
    _articles(server, {"/binh": ("Labour official detained", [BINH])})
    server.serve("/down", b"no", status=503)
    sources = _source("Local", server.url("/feed")) + _source("Down", server.url("/down"))
    config = _daemon_config(tmp_path, sources, receiver)
    daemon = Running(config, tmp_path / "daemon.log")
    try:
        outbox = tmp_path / "state" / "outbox"
        _wait(lambda: daemon.health()["cycles"] >= 2, 30, "two cycles")
        _wait(lambda: outbox.exists() and any(outbox.glob("*-digest-*.json")), 30, "a digest")
        health = daemon.health()
        assert health["http_status"] == 200 and health["status"] == "ok" and health["database"] == "writable"
        metrics = daemon.metrics()
        assert 'd24watch_polls_total{outcome="ok",source="Local"}' in metrics
        assert 'd24watch_polls_total{outcome="error",source="Down"}' in metrics
        assert 'd24watch_deliveries_total{channel="webhook",outcome="sent"} 1.0' in metrics
        assert 'd24watch_entity_matches_total{entity="nguyen-van-binh"} 1.0' in metrics
        assert "d24watch_sources_failing 1.0" in metrics
        assert 'd24watch_kind_polls_total{kind="feed",outcome="error"}' in metrics
        assert 'd24watch_kind_items_found_total{kind="feed"}' in metrics
        assert "d24watch_cycle_duration_seconds_count" in metrics
        assert _get(daemon.base + "/nothing")[0] == 404
        status, inbox = _get(daemon.base + "/")  # the workspace, on the same port, open on loopback
        assert status == 200 and b"Labour official detained" in inbox and b"No token is set" in inbox
    finally:
        code, took = daemon.stop()
    assert code == 0 and took < 10
    events = [e["event"] for e in daemon.events()]
    assert events.count("cycle_done") >= 2 and "digest_sent" in events
    assert events[-2:] == ["daemon_stopping", "daemon_stopped"]
    assert len(receiver.accepted()) == 1
    digest = json.loads(next((tmp_path / "state" / "outbox").glob("*-digest-*.json")).read_text("utf-8"))
    assert [g["id"] for g in digest["entities"]] == ["nguyen-van-binh"]
    assert [f["name"] for f in digest["failing_sources"]] == ["Down"]
    status = d24(capsys, config, "status")
    assert "Down" in status.out and "HTTP 503" in status.out
    db = sqlite3.connect(tmp_path / "state" / "d24watch.db")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()


def test_sigterm_during_a_stalled_fetch_still_stops_within_10_seconds(
    tmp_path: Path, server: LocalServer, receiver: Receiver
) -> None:
    """A cycle waiting on a source that never finishes is cancelled; the exit is clean and quick."""
    server.routes["/slow"] = stall(120)
    config = _daemon_config(tmp_path, _source("Slow", server.url("/slow")), receiver)
    config.write_text(config.read_text("utf-8").replace("timeout = 5", "timeout = 60"), "utf-8")
    daemon = Running(config, tmp_path / "daemon.log")
    _wait(lambda: server.hits("/slow") >= 1, 30, "the stalled fetch to start")
    code, took = daemon.stop()
    assert code == 0 and took < 10
    assert "cycle_cancelled" in [e["event"] for e in daemon.events()]


def test_sigkill_mid_cycle_then_restart_loses_and_repeats_nothing(
    tmp_path: Path, server: LocalServer, receiver: Receiver
) -> None:
    """Killed while one source stalls, after the others' alerts went out; the restarted daemon
    alerts the rest, once."""
    for n in range(3):
        _articles(server, {f"/a{n}": (f"Arrest report {n}", [BINH, f"Case number {n}."])}, feed=f"/feed{n}")
    _articles(server, {"/late": ("Late report", [DIRECTIVE])}, feed="/late-feed")
    late_feed = server.routes["/late-feed"]
    server.routes["/slow"] = stall(120)
    sources = "".join(_source(f"Fast {n}", server.url(f"/feed{n}"), "1h") for n in range(3))
    sources += _source("Slow", server.url("/slow"), "1h")
    config = _daemon_config(tmp_path, sources, receiver, digest="0 7 * * *")
    config.write_text(config.read_text("utf-8").replace("timeout = 5", "timeout = 60"), "utf-8")
    first = Running(config, tmp_path / "first.log")
    _wait(lambda: len(receiver.accepted()) == 3, 60, "three alerts")
    time.sleep(0.5)
    assert first.stop(signal.SIGKILL)[0] == -signal.SIGKILL

    server.routes["/slow"] = late_feed
    second = Running(config, tmp_path / "second.log")
    try:
        _wait(lambda: len(receiver.posts) >= 4, 60, "the fourth alert")
        time.sleep(1.5)  # room for a repeat to show up, if there were one
    finally:
        assert second.stop()[0] == 0
    ids = [p.headers["x-d24watch-delivery"] for p in receiver.posts]
    assert len(ids) == len(set(ids)) == 4
    titles = sorted(json.loads(p.body)["article"]["title"] for p in receiver.posts)
    assert titles == ["Arrest report 0", "Arrest report 1", "Arrest report 2", "Late report"]


def _in_process(config: Path) -> tuple[Daemon, threading.Thread]:
    app = App.load(config)
    commands.init(app)
    daemon = Daemon(app, listen="127.0.0.1:0")
    thread = threading.Thread(target=daemon.run, kwargs={"handle_signals": False}, daemon=True)
    thread.start()
    _wait(lambda: daemon.address is not None and daemon.scheduler.running, 30, "the daemon to start")
    return daemon, thread


def test_a_job_that_raises_is_logged_with_its_traceback_and_counted_and_the_daemon_goes_on(
    tmp_path: Path, server: LocalServer, receiver: Receiver, caplog: Any, monkeypatch: Any
) -> None:
    """A digest job that raises shows in the log and in d24watch_job_errors_total; polling goes on."""
    _articles(server, {"/binh": ("Labour official detained", [BINH])})
    config = _daemon_config(tmp_path, _source("Local", server.url("/feed"), "1s"), receiver, digest="1s")
    daemon, thread = _in_process(config)

    def broken(app: App) -> None:
        raise RuntimeError("digest renderer exploded")

    monkeypatch.setattr(commands, "digest", broken)
    try:
        start = daemon.cycles
        _wait(lambda: 'd24watch_job_errors_total{job="digest"}' in daemon.metrics.render().decode(), 20, "an error")
        _wait(lambda: daemon.cycles >= start + 2, 20, "more cycles")
        assert daemon.health()[0] == 200
    finally:
        daemon.stopping.set()
        thread.join(15)
    assert not thread.is_alive()
    failures = [r for r in caplog.records if r.getMessage().startswith("job_failed job=digest")]
    assert failures and failures[0].exc_info is not None
    assert "digest renderer exploded" in str(failures[0].exc_info[1])


def test_healthz_is_503_while_the_database_cannot_be_written(
    tmp_path: Path, server: LocalServer, receiver: Receiver
) -> None:
    """Another process holding the write lock makes /healthz answer 503; releasing it, 200."""
    _articles(server, {"/a": ("Nothing here", ["Rice harvest news."])})
    config = _daemon_config(tmp_path, _source("Local", server.url("/feed"), "1h"), receiver, digest="0 7 * * *")
    daemon, thread = _in_process(config)
    daemon.health_timeout_s = 0.3
    try:
        status, body = _get(f"{daemon.address}/healthz")
        assert status == 200
        lock = sqlite3.connect(tmp_path / "state" / "d24watch.db", isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
        try:
            status, body = _get(f"{daemon.address}/healthz")
            assert status == 503 and json.loads(body)["database"] == "not writable"
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        assert _get(f"{daemon.address}/healthz")[0] == 200
    finally:
        daemon.stopping.set()
        thread.join(15)
    assert not thread.is_alive()


def test_entity_matches_count_articles_not_sources(tmp_path: Path, server: LocalServer, receiver: Receiver) -> None:
    """Two articles of one feed naming one person count 2 in d24watch_entity_matches_total, as
    HELP says ("articles newly matched"), not 1 for the source."""
    _articles(
        server,
        {"/binh": ("Labour official detained", [BINH]), "/binh2": ("Second report on the case", [BINH, "More."])},
    )
    config = _daemon_config(tmp_path, _source("Local", server.url("/feed")), receiver)
    daemon = Running(config, tmp_path / "daemon.log")
    try:
        _wait(lambda: daemon.health()["cycles"] >= 1, 30, "a cycle")
        metrics = daemon.metrics()
    finally:
        daemon.stop()
    assert 'd24watch_entity_matches_total{entity="nguyen-van-binh"} 2.0' in metrics


def test_job_error_and_skip_counters_exist_at_zero_from_the_start(
    tmp_path: Path, server: LocalServer, receiver: Receiver
) -> None:
    """Every job has its d24watch_job_errors_total and d24watch_jobs_skipped_total series at 0
    before anything went wrong, so that increase() sees the first error."""
    _articles(server, {"/binh": ("Labour official detained", [BINH])})
    config = _daemon_config(tmp_path, _source("Local", server.url("/feed"), "1h"), receiver, digest="1h")
    daemon, thread = _in_process(config)
    try:
        metrics = daemon.metrics.render().decode()
    finally:
        daemon.stopping.set()
        thread.join(15)
    for job in ("poll", "digest", "deliver", "recheck"):
        assert f'd24watch_job_errors_total{{job="{job}"}} 0.0' in metrics
        assert f'd24watch_jobs_skipped_total{{job="{job}"}} 0.0' in metrics


def test_a_delivery_is_logged_as_delivered_with_its_kind(
    tmp_path: Path, server: LocalServer, receiver: Receiver
) -> None:
    """The JSON log line of a sent alert keeps its event name: {"event": "delivered", "kind": "mention", …}."""
    _articles(server, {"/binh": ("Labour official detained", [BINH])})
    config = _daemon_config(tmp_path, _source("Local", server.url("/feed")), receiver)
    daemon = Running(config, tmp_path / "daemon.log")
    try:
        _wait(lambda: len(receiver.accepted()) >= 1, 30, "an alert")
        _wait(lambda: any(e.get("event") == "delivered" for e in daemon.events()), 10, "its log line")
        events = daemon.events()
    finally:
        daemon.stop()
    [line] = [e for e in events if e.get("event") == "delivered" and e.get("channel") == "webhook"]
    assert line["kind"] == "mention"
    assert not [e for e in events if e.get("event") == "mention"]
