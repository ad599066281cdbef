"""Safety end to end: the address guard through feed links, page links and redirects; secrets kept
out of everything d24watch prints or writes; hostile text escaped or cut in every channel; and the
database under contention, from an older version, read-only or full."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from d24watch.deliver.render.email import email_message, render_html, render_text
from d24watch.deliver.render.slack import SLACK_MAX_TEXT, slack_message
from d24watch.store import MIGRATIONS, Store
from tests.conftest import article_page, feed_source, rss, write_config
from tests.helpers import d24
from tests.prose import prose
from tests.receiver import MailServer, Receiver
from tests.server import LocalServer, redirect
from tests.test_deliver import BINH, _articles

# -- the address guard, end to end -------------------------------------------------------------

LOOPBACK_SPELLINGS = [
    "http://localhost:{port}/p",
    "http://localhost.:{port}/p",
    "http://127.0.0.1:{port}/p",
    "http://2130706433:{port}/p",
    "http://0x7f000001:{port}/p",
    "http://0177.0.0.1:{port}/p",
    "http://127.1:{port}/p",
    "http://[::1]:{port}/p",
    "http://[::ffff:127.0.0.1]:{port}/p",
    "http://[::ffff:7f00:1]:{port}/p",
]


def _guarded(tmp_path: Path, sources: str) -> Path:
    config = write_config(tmp_path, sources)
    config.write_text(
        config.read_text("utf-8").replace("allow_private_addresses = true", "allow_private_addresses = false"), "utf-8"
    )
    return config


def test_feed_links_to_loopback_are_refused_however_spelled(tmp_path: Path, server: LocalServer, capsys: Any) -> None:
    """The config's own loopback feed is fetched (it is written there); the loopback links inside
    it are not, in any spelling: the items keep the feed's text and the error names the refusal."""
    server.serve("/p", article_page("Inside", ["internal page that must not be fetched"]))
    items = [
        {"title": f"Item {n}", "link": link.format(port=server.port), "description": f"Feed text {n}. " + prose(n)[0]}
        for n, link in enumerate(LOOPBACK_SPELLINGS)
    ]
    server.serve("/feed", rss(items), "application/rss+xml")
    config = _guarded(tmp_path, feed_source("Local", server.url("/feed")))
    d24(capsys, config, "init")
    result = d24(capsys, config, "poll")
    assert result.code == 0
    assert server.hits("/p") == 0
    assert "pages kept from the feed" in result.out
    db = sqlite3.connect(tmp_path / "state" / "d24watch.db")
    texts = [r[0] for r in db.execute("SELECT text FROM articles WHERE source = 'Local'")]
    db.close()
    assert texts and all("internal page" not in t for t in texts)


def test_page_links_and_redirects_to_loopback_are_refused(tmp_path: Path, server: LocalServer, capsys: Any) -> None:
    """A listing page's links to loopback are not followed, nor is a redirect from an article link."""
    server.serve("/inside/secret-admin-page-2024", article_page("Admin", ["must not be fetched"]))
    server.routes["/news/bounce-to-inside-2024"] = redirect(server.url("/inside/secret-admin-page-2024"))
    listing = (
        "<html><body>"
        + f'<a href="http://localhost:{server.port}/inside/secret-admin-page-2024">a</a>'
        + f'<a href="http://[::1]:{server.port}/inside/secret-admin-page-2024">b</a>'
        + f'<a href="{server.url("/news/bounce-to-inside-2024")}">c</a>'
        + "</body></html>"
    )
    server.serve("/listing", listing)
    config = _guarded(tmp_path, feed_source("Listing", server.url("/listing"), "page"))
    d24(capsys, config, "init")
    assert d24(capsys, config, "poll").code == 0
    assert server.hits("/inside/secret-admin-page-2024") == 0
    assert server.hits("/news/bounce-to-inside-2024") == 0  # same host as the listing, but not written in the config


# -- secrets ------------------------------------------------------------------------------------

SMTP_PASSWORD = "pw-PLANTED-1a2b3c4d"
SLACK_TOKEN = "PLANTED-slack-9z8y7x"
HMAC_KEY = "PLANTED-hmac-key-6w5v"


@pytest.fixture
def planted(monkeypatch: pytest.MonkeyPatch, receiver: Receiver) -> Iterator[None]:
    monkeypatch.setenv("D24_TEST_SMTP_PASSWORD", SMTP_PASSWORD)
    monkeypatch.setenv("D24_TEST_SLACK", receiver.url(f"/services/T0/B0/{SLACK_TOKEN}"))
    monkeypatch.setenv("D24_TEST_HMAC", HMAC_KEY)
    yield


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    srv = Receiver().start()
    yield srv
    srv.stop()


def test_planted_secrets_appear_nowhere_in_output_logs_database_or_outbox(
    tmp_path: Path, server: LocalServer, receiver: Receiver, planted: None, capsys: Any
) -> None:
    """Slack refuses and echoes its URL back, SMTP rejects the login: every command, with and without
    --debug, and every file written is searched for the secrets; none is there."""
    mail = MailServer(auth_require_tls=False)
    mail.smtp["authenticator"] = mail.authenticate  # which accepts another password than the planted one
    mail.start()
    try:
        _articles(server, {"/binh": ("Labour official detained", [BINH])})
        receiver.echo = True
        receiver.answers = [(500, {})] * 20
        extra = (
            '\n[notify.slack]\nmode = "immediate"\nwebhook_url_env = "D24_TEST_SLACK"\n'
            f'\n[notify.hook]\ntype = "webhook"\nmode = "immediate"\nurl = "{receiver.url("/hook")}"\nsecret_env = "D24_TEST_HMAC"\n'
            f'\n[notify.email]\nmode = "digest"\nsmtp_host = "127.0.0.1"\nsmtp_port = {mail.port}\nsecurity = "none"\n'
            'username = "alerts"\npassword_env = "D24_TEST_SMTP_PASSWORD"\nfrom = "a@example.org"\nto = ["b@example.org"]\n'
            '[delivery]\nretry_initial = "1s"\n[log]\nformat = "json"\nlevel = "debug"\n'
        )
        config = write_config(tmp_path, feed_source("Local", server.url("/feed")), extra=extra)
        printed = []
        for args in (
            ["init"],
            ["poll"],
            ["--debug", "poll"],
            ["deliver"],
            ["--debug", "deliver"],
            ["digest"],
            ["--debug", "digest"],
            ["digest", "--dry-run"],
            ["status"],
            ["--debug", "status"],
            ["check-config"],
            ["export"],
        ):
            result = d24(capsys, config, *args)
            printed += [result.out, result.err]
        assert any("SMTP 535" in text for text in printed), "the login failure should be reported"
        assert any("HTTP 500" in text for text in printed)
        assert receiver.posts, "the receivers were reached"
        files = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "d24watch.toml"]
        assert any(p.suffix == ".db" for p in files)
        for secret in (SMTP_PASSWORD, SLACK_TOKEN, HMAC_KEY):
            for text in printed:
                assert secret not in text
            for path in files:
                data = path.read_bytes()
                assert secret.encode() not in data and quote(secret).encode() not in data, path
    finally:
        mail.stop()


def test_check_config_and_errors_never_print_a_literal_secret(tmp_path: Path, capsys: Any) -> None:
    """A secret written literally in the config (allowed for local use) is not echoed by errors."""
    config = write_config(
        tmp_path, "", extra='\n[notify.slack]\nmode = "immediate"\nwebhook_url = "ftp://PLANTED-literal-secret"\n'
    )
    result = d24(capsys, config, "check-config")
    assert result.code == 2 and "notify.slack.webhook_url" in result.err
    assert "PLANTED-literal-secret" not in result.out + result.err


# -- output injection -----------------------------------------------------------------------------


def _hostile_payload(title: str) -> dict[str, Any]:
    return {
        "event": "mention",
        "delivery_id": "0123456789abcdef0123456789abcdef",
        "detected_at": "2026-05-06T10:00:00Z",
        "article": {
            "url": "javascript:alert(1)",
            "canonical_url": "javascript:alert(1)",
            "title": title,
            "source": "Src <b>",
            "published": None,
            "language": "en",
        },
        "entities": [
            {
                "id": "x",
                "label": "X",
                "kind": "person",
                "hits": [
                    {
                        "text": "<img src=x onerror=alert(1)>",
                        "start": 0,
                        "end": 5,
                        "snippet": "a <img src=x onerror=alert(1)> b",
                    }
                ],
            }
        ],
    }


def test_hostile_titles_are_escaped_or_cut_in_every_channel() -> None:
    """Header injection, script, a javascript: link, Slack control sequences and a 100,000-character
    title: the email has no extra header and escapes everything, Slack stays within its limits."""
    title = "Breaking\r\nBcc: victim@example.org\r\n<script>alert(1)</script> <!channel> " + "A" * 100_000
    payload = _hostile_payload(title)
    message = email_message(payload, "d24watch <a@example.org>", ["b@example.org"])
    raw = message.as_bytes()
    headers = raw.split(b"\n\n", 1)[0]
    assert b"\nBcc:" not in raw and b"victim@example.org" not in headers.split(b"Subject:")[0]
    assert message["Bcc"] is None and len(str(message["Subject"])) <= 200 and "\n" not in str(message["Subject"])
    html = render_html(payload)
    assert (
        "<script>" not in html
        and "<img" not in html
        and "javascript:" not in html.split("<body", 1)[1].split("href=")[0]
    )
    assert 'href="javascript' not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<script>" in render_text(payload)  # plain text shows it as typed; nothing interprets it
    slack = slack_message(payload)
    texts = [slack["text"]] + [b["text"]["text"] for b in slack["blocks"] if "text" in b]
    assert all(len(t) <= SLACK_MAX_TEXT for t in texts)
    assert not any("<!channel>" in t or "<javascript" in t for t in texts)


def test_file_channel_names_come_from_the_delivery_not_the_title(
    tmp_path: Path, server: LocalServer, capsys: Any
) -> None:
    """A title full of ../ and slashes cannot steer where the outbox writes."""
    _articles(server, {"/binh": ("../../../../etc/cron.d/evil", [BINH])})
    config = write_config(tmp_path, feed_source("Local", server.url("/feed")))
    d24(capsys, config, "init")
    d24(capsys, config, "poll")
    assert d24(capsys, config, "digest").code == 0
    written = [p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".eml", ".json")]
    assert written and all(str(p).startswith("state/outbox/") and ".." not in str(p) for p in written)


# -- the database -----------------------------------------------------------------------------------


def test_concurrent_poll_and_digest_both_succeed(tmp_path: Path, server: LocalServer, capsys: Any) -> None:
    """A poll and digests running at the same moment wait for each other (WAL, busy timeout)."""
    _articles(server, {f"/a{n}": (f"Story {n}", [BINH, f"Number {n}."]) for n in range(6)})
    config = write_config(tmp_path, feed_source("Local", server.url("/feed")))
    d24(capsys, config, "init")
    command = [sys.executable, "-m", "d24watch", "--config", str(config)]
    poll = subprocess.Popen([*command, "poll"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    digests = [subprocess.run([*command, "digest"], capture_output=True, text=True, check=False) for _ in range(4)]
    _, err = poll.communicate(timeout=120)
    assert poll.returncode == 0, err
    assert all(d.returncode == 0 for d in digests), [d.stderr for d in digests]
    assert "locked" not in err + "".join(d.stderr for d in digests)
    d24(capsys, config, "digest")
    db = sqlite3.connect(tmp_path / "state" / "d24watch.db")
    assert db.execute("SELECT count(*) FROM digest_queue WHERE digested_at IS NULL").fetchone()[0] == 0
    lines = db.execute("SELECT count(*), count(DISTINCT article_id) FROM digest_queue").fetchone()
    db.close()
    assert lines == (6, 6)


def test_a_database_from_an_older_version_is_migrated_by_init_and_refused_before(
    tmp_path: Path, server: LocalServer, capsys: Any
) -> None:
    """Schema 1 with data: commands other than init ask for init; init migrates and keeps the data."""
    config = write_config(tmp_path, "")
    path = tmp_path / "state" / "d24watch.db"
    store = Store(path)
    with store.transaction():
        MIGRATIONS[0](store.db)
        store.conn.execute("PRAGMA user_version = 1")
        store.conn.execute("INSERT INTO meta(key, value) VALUES ('kept', 'yes')")
    store.close()
    refused = d24(capsys, config, "status")
    assert refused.code == 1 and "run `d24watch init`" in refused.err
    assert d24(capsys, config, "init").code == 0
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert db.execute("SELECT value FROM meta WHERE key = 'kept'").fetchone() == ("yes",)
    db.close()


def test_a_database_from_a_newer_version_is_refused(tmp_path: Path, capsys: Any) -> None:
    config = write_config(tmp_path, "")
    assert d24(capsys, config, "init").code == 0
    db = sqlite3.connect(tmp_path / "state" / "d24watch.db")
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    db.commit()
    db.close()
    result = d24(capsys, config, "init")
    assert result.code == 1 and "newer than this d24watch" in result.err and "Traceback" not in result.err


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 20 MB tmpfs, where the host lets tests mount one."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(mount)], capture_output=True, check=False
    )
    if made.returncode != 0:
        pytest.skip("mounting a small tmpfs needs privileges this machine does not give")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _disk_config(folder: Path, server: LocalServer) -> Path:
    items = [{"title": f"Long story {n}", "link": server.url(f"/long{n}"), "guid": f"long{n}"} for n in range(40)]
    for n in range(40):
        server.serve(f"/long{n}", article_page(f"Long story {n}", prose(3000 + n, words=6000)))
    server.serve("/feed", rss(items), "application/rss+xml")
    return write_config(folder, feed_source("Local", server.url("/feed")))


def test_a_full_disk_is_reported_in_one_sentence_and_nothing_is_half_written(
    small_disk: Path, server: LocalServer, capsys: Any
) -> None:
    """The poll that cannot write exits 1 naming the database; what was stored stays consistent."""
    config = _disk_config(small_disk, server)
    assert d24(capsys, config, "init").code == 0
    filler = small_disk / "filler"
    free = shutil.disk_usage(small_disk).free
    filler.write_bytes(b"\0" * max(0, free - 600_000))
    result = d24(capsys, config, "poll")
    assert result.code == 1
    assert "cannot write to the database" in result.err and "full" in result.err
    assert result.err.count("\n") == 1 and "Traceback" not in result.err
    filler.unlink()
    db = sqlite3.connect(small_disk / "state" / "d24watch.db")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()
    again = d24(capsys, config, "poll")
    assert again.code == 0, again.err


def test_a_read_only_database_is_reported_in_one_sentence(small_disk: Path, server: LocalServer, capsys: Any) -> None:
    config = _disk_config(small_disk, server)
    assert d24(capsys, config, "init").code == 0
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:
        result = d24(capsys, config, "poll")
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert result.code == 1 and "database" in result.err and "Traceback" not in result.err
    assert result.err.count("\n") == 1, result.err
    assert os.path.exists(small_disk / "state" / "d24watch.db")
