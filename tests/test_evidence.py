"""Evidence: the page as received kept in WARC on alert, re-checks on schedule that turn edits and
takedowns into one event each, and `d24watch evidence` handing one article over."""

from __future__ import annotations

import hashlib
import itertools
import json
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from warcio.archiveiterator import ArchiveIterator

from d24watch import commands
from d24watch.app import App
from d24watch.deliver.render.email import render_text
from tests.conftest import article_page, feed_source, rss, write_config
from tests.helpers import d24
from tests.prose import prose
from tests.receiver import Receiver
from tests.server import LocalServer, redirect
from tests.test_deliver import BINH, Clock, _webhook

EDIT = "The ministry later said the official had been released on bail pending trial."


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    srv = Receiver().start()
    yield srv
    srv.stop()


def _page(title: str, seed: int, extra: list[str] | None = None) -> str:
    body = prose(seed)
    return article_page(title, [*body[:2], BINH, *(extra or []), *body[2:]])


def _setup(tmp_path: Path, server: LocalServer, receiver: Receiver, paths: list[str]) -> tuple[Path, App, Clock]:
    items = []
    for n, path in enumerate(paths):
        server.serve(path, _page(f"Report {n}", 7000 + n))
        items.append({"title": f"Report {n}", "link": server.url(path), "guid": path})
    server.serve("/feed", rss(items), "application/rss+xml")
    config = write_config(tmp_path, feed_source("Local", server.url("/feed")), extra=_webhook(receiver, secret=False))
    app = App.load(config)
    clock = Clock()
    app.clock = clock
    commands.init(app)
    commands.poll(app)
    return config, app, clock


def _read_records(stream: Any) -> Iterator[dict[str, Any]]:
    for r in ArchiveIterator(stream):
        yield {
            "type": r.rec_type,
            "id": r.rec_headers.get_header("WARC-Record-ID"),
            "uri": r.rec_headers.get_header("WARC-Target-URI"),
            "concurrent_to": r.rec_headers.get_header("WARC-Concurrent-To"),
            "status": r.http_headers.get_statuscode() if r.http_headers and r.rec_type == "response" else None,
            "http": r.http_headers.to_str() if r.http_headers else "",
            "sha256": r.rec_headers.get_header("D24Watch-Body-SHA256"),
            "body": r.content_stream().read(),
        }


def _events(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(p.body) for p in receiver.accepted()]


def test_the_page_is_kept_in_warc_on_alert_and_reads_back_with_warcio(
    tmp_path: Path, server: LocalServer, receiver: Receiver
) -> None:
    """One response record per alerted article: its URL, status, headers and the body byte for byte,
    with the SHA-256 recorded beside it; pages without hits are not kept."""
    server.serve("/plain", article_page("Rice harvest", prose(4)))
    _, app, _ = _setup(tmp_path, server, receiver, ["/a"])
    files = list((tmp_path / "state" / "warc").glob("*.warc.gz"))
    assert len(files) == 1
    with files[0].open("rb") as stream:
        records = list(_read_records(stream))
    # The file opens with its warcinfo; the response is followed by its request.
    assert [r["type"] for r in records] == ["warcinfo", "response", "request"]
    info = records[0]["body"].decode()
    assert "software: d24watch/" in info and "config-sha256: " in info and "format: WARC File Format 1.1" in info
    response, request = records[1], records[2]
    assert (response["uri"], response["status"]) == (server.url("/a"), "200")
    assert response["body"] == server.routes["/a"].body  # type: ignore[union-attr]
    digest = response["sha256"]
    assert digest == hashlib.sha256(response["body"]).hexdigest()
    assert request["concurrent_to"] == response["id"] and request["uri"] == server.url("/a")
    assert request["http"].startswith("GET /a HTTP/1.1") and "user-agent" in request["http"].lower()
    with app.store() as store:
        row = store.find_article(server.url("/a"))
        assert row is not None
        [evidence] = store.evidence_of(row.id)
    assert evidence.sha256 == digest and evidence.reason == "alert"


def test_an_edit_a_404_and_the_schedule_each_give_one_event(
    tmp_path: Path, server: LocalServer, receiver: Receiver
) -> None:
    """Day 1: unchanged, nothing sent. Day 7: edited, one `changed` with the diff. Day 30: 404, one
    `removed`. Day 60: nothing is fetched again."""
    _, app, clock = _setup(tmp_path, server, receiver, ["/a"])
    assert [e["event"] for e in _events(receiver)] == ["mention"]

    clock.advance(timedelta(days=1, minutes=1).total_seconds())
    report, _ = commands.recheck(app)
    assert (report.checked, report.unchanged) == (1, 1)
    assert len(receiver.posts) == 1

    server.serve("/a", _page("Report 0", 7000, [EDIT]))
    clock.advance(timedelta(days=6).total_seconds())
    report, _ = commands.recheck(app)
    assert report.changed == 1
    changed = _events(receiver)[-1]
    assert changed["event"] == "changed" and changed["article"]["url"] == server.url("/a")
    assert "+ " + EDIT in changed["change"]["diff"] and changed["change"]["revision"] == 2
    assert [e["id"] for e in changed["entities"]] == ["nguyen-van-binh"]
    assert commands.recheck(app)[0].checked == 0  # nothing else is due yet

    server.serve("/a", b"gone", status=404)
    clock.advance(timedelta(days=23).total_seconds())
    report, _ = commands.recheck(app)
    assert report.removed == 1
    removed = _events(receiver)[-1]
    assert removed["event"] == "removed" and removed["change"]["status"] == 404
    # The 404 itself is on record, and the event names its WARC record.
    responses = {}
    for warc in (tmp_path / "state" / "warc").glob("*.warc.gz"):
        with warc.open("rb") as stream:
            responses.update({r["id"]: r for r in _read_records(stream) if r["type"] == "response"})
    gone = responses[removed["change"]["record_id"]]
    assert (gone["status"], gone["body"], gone["uri"]) == ("404", b"gone", server.url("/a"))

    hits = server.hits("/a")
    clock.advance(timedelta(days=30).total_seconds())
    assert commands.recheck(app)[0].checked == 0
    assert server.hits("/a") == hits
    assert [e["event"] for e in _events(receiver)] == ["mention", "changed", "removed"]
    assert len({p.headers["x-d24watch-delivery"] for p in receiver.posts}) == 3


def test_a_redirect_to_the_home_page_and_a_page_emptied_are_removals(
    tmp_path: Path, server: LocalServer, receiver: Receiver
) -> None:
    """Two takedowns that answer 200: a redirect to `/`, and a page whose article text is gone."""
    _, app, clock = _setup(tmp_path, server, receiver, ["/a", "/b"])
    server.serve("/", "<html><body><h1>Front page</h1></body></html>")
    server.routes["/a"] = redirect(server.url("/"))
    server.serve("/b", "<html><body></body></html>")
    clock.advance(timedelta(days=1, minutes=1).total_seconds())
    report, _ = commands.recheck(app)
    assert report.removed == 2
    reasons = sorted(e["change"]["reason"] for e in _events(receiver) if e["event"] == "removed")
    assert reasons[0].startswith("redirected to the home page") and reasons[1] == "the article's text is gone"
    # The redirect that took the article down is archived before the home page it led to.
    with app.store() as store:
        row = store.find_article(server.url("/a"))
        assert row is not None
        kept = [(e.status, e.url, e.reason) for e in store.evidence_of(row.id)]
    assert (302, server.url("/a"), "removed: redirect") in kept and (200, server.url("/"), "removed") in kept
    clock.advance(timedelta(days=40).total_seconds())
    assert commands.recheck(app)[0].checked == 0


def test_changed_and_removed_appear_in_the_digest(tmp_path: Path, server: LocalServer, receiver: Receiver) -> None:
    """The digest lists an edit with its diff under the entity, marked as such."""
    _, app, clock = _setup(tmp_path, server, receiver, ["/a"])
    server.serve("/a", _page("Report 0", 7000, [EDIT]))
    clock.advance(timedelta(days=1, minutes=1).total_seconds())
    commands.recheck(app)
    previews = commands.preview_digests(app)
    [(_, payload)] = previews
    text = render_text(payload)
    assert "[changed] Report 0" in text and "! + " + EDIT in text


def test_evidence_command_writes_records_revisions_and_hits(
    tmp_path: Path, server: LocalServer, receiver: Receiver, capsys: Any
) -> None:
    """`d24watch evidence URL --out DIR`: WARC records, one text file per revision, the article with
    its hits and events, and SHA-256 sums of each."""
    config, app, clock = _setup(tmp_path, server, receiver, ["/a"])
    server.serve("/a", _page("Report 0", 7000, [EDIT]))
    clock.advance(timedelta(days=1, minutes=1).total_seconds())
    commands.recheck(app)
    out = tmp_path / "handover"
    result = d24(capsys, config, "evidence", server.url("/a"), "--out", str(out))
    assert result.code == 0, result.err
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "SHA256SUMS",
        "a.wacz",
        "article.json",
        "custody.jsonl",
        "records.warc.gz",
        "revision-001.txt",
        "revision-002.txt",
    ]
    with (out / "records.warc.gz").open("rb") as stream:
        records = list(_read_records(stream))
    # Each day's file opens with its warcinfo; each response comes with its request.
    assert [r["type"] for r in records] == ["warcinfo", "response", "request", "warcinfo", "response", "request"]
    assert [r["uri"] for r in records if r["type"] == "response"] == [server.url("/a")] * 2
    # The WACZ package validates with the `wacz` package's own validator (WACZ 1.1.1).
    check = subprocess.run(
        [sys.executable, "-m", "wacz", "validate", "-f", str(out / "a.wacz")], capture_output=True, text=True
    )
    assert check.returncode == 0 and "Version detected as 1.1.1" in check.stdout, check.stdout + check.stderr
    with zipfile.ZipFile(out / "a.wacz") as package:
        contents = set(package.namelist())
        pages = package.read("pages/pages.jsonl").decode().splitlines()
        listed = {r["path"] for r in json.loads(package.read("datapackage.json"))["resources"]}
    assert {
        "archive/records.warc.gz",
        "indexes/index.cdx.gz",
        "pages/pages.jsonl",
        "datapackage-digest.json",
    } <= contents
    assert listed == contents - {"datapackage.json", "datapackage-digest.json"}
    assert json.loads(pages[1])["url"] == server.url("/a")
    custody = [json.loads(line) for line in (out / "custody.jsonl").read_text("utf-8").splitlines()]
    assert [c["action"] for c in custody] == ["captured", "captured", "changed", "exported"]
    assert custody[0]["detail"]["record_id"] == records[1]["id"]
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(custody))
    article = json.loads((out / "article.json").read_text("utf-8"))
    assert article["entities"][0]["id"] == "nguyen-van-binh" and [e["kind"] for e in article["events"]] == ["changed"]
    assert EDIT in (out / "revision-002.txt").read_text("utf-8")
    for line in (out / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ")
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest
    missing = d24(capsys, config, "evidence", "http://nowhere.example/x", "--out", str(out))
    assert missing.code == 2 and "no stored article" in missing.err


def test_evidence_for_an_unknown_url_says_so_and_not_config_error(
    tmp_path: Path, server: LocalServer, receiver: Receiver, capsys: Any
) -> None:
    """An URL that no stored article has exits 2 with one sentence naming it, not "config error"."""
    config, _app, _clock = _setup(tmp_path, server, receiver, ["/a"])
    missing = d24(capsys, config, "evidence", "http://nowhere.example/x", "--out", str(tmp_path / "out"))
    assert missing.code == 2
    assert missing.err == "d24watch: no stored article has the URL http://nowhere.example/x (see `d24watch search`)\n"
    assert not (tmp_path / "out").exists()


def test_a_watched_page_that_stops_naming_a_person_gives_one_removed_event(
    tmp_path: Path, server: LocalServer, receiver: Receiver, capsys: Any
) -> None:
    """A ministry's staff page: its first version is the baseline (no alert); when Nguyễn Văn Bình's
    name and title go, one `removed` event names him; polling the same page again adds nothing."""
    staff = prose(8100)
    with_binh = [*staff[:2], "Nguyễn Văn Bình, Director of the Department of Legal Affairs, MOLISA.", *staff[2:]]
    server.serve("/staff", article_page("Leadership of the Ministry", with_binh))
    source = '\n[[sources]]\nname = "Ministry staff"\nkind = "page"\nwatch = "removal"\n'
    source += f'url = "{server.url("/staff")}"\ninterval = "1d"\n'
    config = write_config(tmp_path, source, extra=_webhook(receiver, secret=False))
    d24(capsys, config, "init")
    first = d24(capsys, config, "poll")
    assert first.code == 0 and "Ministry staff: 1 new" in first.out
    assert receiver.posts == []

    server.serve("/staff", article_page("Leadership of the Ministry", staff))
    for _ in range(2):
        _due_now(tmp_path)
        assert d24(capsys, config, "poll").code == 0
    [removed] = _events(receiver)
    assert removed["event"] == "removed" and removed["article"]["url"] == server.url("/staff")
    assert removed["change"]["entities_gone"] == ["nguyen-van-binh"]
    assert [e["id"] for e in removed["entities"]] == ["nguyen-van-binh"]
    assert "no longer named on the page" in removed["change"]["reason"]


def _due_now(folder: Path) -> None:
    import sqlite3

    db = sqlite3.connect(folder / "state" / "d24watch.db")
    db.execute("UPDATE sources SET next_check_at = NULL")
    db.commit()
    db.close()
