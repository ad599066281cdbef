"""Deliveries end to end: real feeds on 127.0.0.1, a real HTTP receiver for webhooks and Slack, a
real SMTP server (aiosmtpd) for mail, and the outbox kept in a real SQLite file."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from html import escape
from pathlib import Path
from typing import Any

import pytest

from d24watch import commands
from d24watch.app import App
from d24watch.deliver.plan import retry_delay
from d24watch.deliver.render.slack import SLACK_MAX_BLOCKS, SLACK_MAX_TEXT, slack_message
from tests.conftest import article_page, feed_source, rss, write_config
from tests.helpers import d24
from tests.prose import prose
from tests.receiver import MailServer, Receiver, tls_context
from tests.server import LocalServer, stall

BINH = "Police in Hanoi arrested Nguyễn Văn Bình, director of legal affairs at MOLISA, under Article 337."
DIRECTIVE = "The Politburo's Directive 24, issued in July 2023, treats civil society as a threat to national security."
HONG = "Climate campaigner Hoàng Thị Minh Hồng was sentenced for tax evasion."
SECRET = "whsec-test-0123456789"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    srv = Receiver().start()
    yield srv
    srv.stop()


@pytest.fixture
def mail() -> Iterator[MailServer]:
    srv = MailServer().start()
    yield srv
    srv.stop()


def _articles(server: LocalServer, pages: dict[str, tuple[str, list[str]]], feed: str = "/feed") -> None:
    """Serve each page (path: (title, sentences woven into prose)) and a feed listing them."""
    items = []
    for path, (title, sentences) in pages.items():
        body = prose(int(hashlib.sha256(path.encode()).hexdigest()[:8], 16))
        server.serve(path, article_page(escape(title), [*body[:2], *(escape(t) for t in sentences), *body[2:]]))
        items.append({"title": escape(title), "link": server.url(path), "guid": path})
    server.serve(feed, rss(items), "application/rss+xml")


def _config(tmp_path: Path, sources: str, extra: str) -> Path:
    return write_config(tmp_path, sources, extra=extra)


def _webhook(receiver: Receiver, *, secret: bool = True, mode: str = "immediate") -> str:
    return (
        f'\n[notify.webhook]\nmode = "{mode}"\nurl = "{receiver.url("/hook")}"\n'
        + (f'secret = "{SECRET}"\n' if secret else "")
        + '[delivery]\nretry_initial = "1m"\nretry_max = "1h"\n'
    )


def _email(mail: MailServer, **extra: str) -> str:
    lines = [
        "\n[notify.email]",
        'mode = "digest"',
        'smtp_host = "127.0.0.1"',
        f"smtp_port = {mail.port}",
        'security = "none"',
        'from = "d24watch <alerts@example.org>"',
        'to = ["team@example.org"]',
        "timeout = 5",
        *(f'{k} = "{v}"' for k, v in extra.items()),
    ]
    return "\n".join(lines) + "\n"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 5, 6, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _app(config: Path, clock: Clock) -> App:
    app = App.load(config)
    app.clock = clock
    return app


def _parts(message: EmailMessage) -> tuple[str, str]:
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    return plain.get_content(), html.get_content()


# -- webhook --------------------------------------------------------------------------------------


def test_webhook_refused_twice_then_accepted_gets_the_alert_once_with_one_delivery_id(
    tmp_path: Path, server: LocalServer, receiver: Receiver, capsys: Any
) -> None:
    """A receiver that answers 503 twice (once with Retry-After) gets the same bytes three times,
    after the back-off each time, and accepts it once; later runs send nothing."""
    _articles(server, {"/binh": ("Labour official detained", [BINH])})
    config = _config(tmp_path, feed_source("Local", server.url("/feed")), _webhook(receiver))
    assert d24(capsys, config, "init").code == 0
    clock = Clock()
    app = _app(config, clock)
    receiver.answers = [(503, {}), (503, {"Retry-After": "300"})]

    reports, delivered = commands.poll(app)
    assert reports[0].matched_entities == ("nguyen-van-binh",)
    assert (delivered.sent, delivered.failed) == (0, 1) and len(receiver.posts) == 1

    clock.advance(30)  # the first back-off is one minute
    assert commands.deliver(app)[0].sent == 0 and len(receiver.posts) == 1
    clock.advance(31)
    report, failing = commands.deliver(app)
    assert (report.failed, failing, len(receiver.posts)) == (1, 1, 2)

    clock.advance(200)  # Retry-After: 300 outweighs the two-minute back-off
    assert commands.deliver(app)[0].sent == 0 and len(receiver.posts) == 2
    clock.advance(101)
    report, failing = commands.deliver(app)
    assert (report.sent, failing, len(receiver.posts)) == (1, 0, 3)

    clock.advance(10_000)
    assert commands.deliver(app)[0].sent == 0
    assert d24(capsys, config, "poll").code == 0
    assert len(receiver.posts) == 3 and len(receiver.accepted()) == 1
    assert len({p.headers["x-d24watch-delivery"] for p in receiver.posts}) == 1
    assert len({p.body for p in receiver.posts}) == 1


def test_signature_verifies_from_the_raw_body_and_the_payload_is_as_specified(
    tmp_path: Path, server: LocalServer, receiver: Receiver, capsys: Any
) -> None:
    """A receiver recomputes HMAC-SHA256 over the bytes it got; the JSON has SPEC's fields and
    offsets that point into the stored text."""
    _articles(server, {"/both": ("Crackdown widens", [BINH, DIRECTIVE])})
    config = _config(tmp_path, feed_source("Local", server.url("/feed")), _webhook(receiver))
    d24(capsys, config, "init")
    assert d24(capsys, config, "poll").code == 0
    [post] = receiver.posts
    assert post.headers["content-type"].startswith("application/json")
    expected = "sha256=" + hmac.new(SECRET.encode(), post.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(post.headers["x-d24watch-signature"], expected)
    tampered = post.body.replace(b"Crackdown", b"Crackd0wn")
    assert not hmac.compare_digest(
        post.headers["x-d24watch-signature"],
        "sha256=" + hmac.new(SECRET.encode(), tampered, hashlib.sha256).hexdigest(),
    )
    payload = json.loads(post.body)
    assert payload["event"] == "mention"
    assert payload["delivery_id"] == post.headers["x-d24watch-delivery"]
    assert payload["detected_at"].endswith("Z")
    assert set(payload["article"]) == {"url", "canonical_url", "title", "source", "published", "language"}
    assert payload["article"]["title"] == "Crackdown widens" and payload["article"]["source"] == "Local"
    # Entities found together go out together, in one message.
    assert [e["id"] for e in payload["entities"]] == ["directive-24", "nguyen-van-binh"]
    exported = json.loads(d24(capsys, config, "export").out.splitlines()[-1])
    for entity in payload["entities"]:
        assert set(entity) == {"id", "label", "kind", "hits"}
        for hit in entity["hits"]:
            assert exported["text"][hit["start"] : hit["end"]] == hit["text"]
            assert hit["text"] in hit["snippet"]


def test_unsigned_webhook_has_no_signature_header(
    tmp_path: Path, server: LocalServer, receiver: Receiver, capsys: Any
) -> None:
    """Without a secret the delivery id is sent and no signature is made up."""
    _articles(server, {"/binh": ("Labour official detained", [BINH])})
    config = _config(tmp_path, feed_source("Local", server.url("/feed")), _webhook(receiver, secret=False))
    d24(capsys, config, "init")
    d24(capsys, config, "poll")
    [post] = receiver.posts
    assert "x-d24watch-signature" not in post.headers and post.headers["x-d24watch-delivery"]


def test_normal_priority_entities_only_reach_the_digest(
    tmp_path: Path, server: LocalServer, receiver: Receiver, capsys: Any
) -> None:
    """A normal-priority entity is not pushed to immediate channels but is in the digest."""
    _articles(server, {"/hong": ("Campaigner sentenced", [HONG])})
    config = _config(tmp_path, feed_source("Local", server.url("/feed")), _webhook(receiver))
    d24(capsys, config, "init")
    assert "matched hoang-thi-minh-hong" in d24(capsys, config, "poll").out
    assert receiver.posts == []
    preview = d24(capsys, config, "digest", "--dry-run")
    assert preview.code == 0 and "Hoàng Thị Minh Hồng" in preview.out and "Campaigner sentenced" in preview.out


def test_an_entity_found_later_goes_out_in_a_new_message(
    tmp_path: Path, server: LocalServer, receiver: Receiver, capsys: Any
) -> None:
    """After the watchlist gains an entity, rematch alerts only that entity, in a message of its own."""
    _articles(server, {"/both": ("Crackdown widens", [BINH, "Activist Trần Thị Nga Mới was also questioned."])})
    config = _config(tmp_path, feed_source("Local", server.url("/feed")), _webhook(receiver))
    d24(capsys, config, "init")
    d24(capsys, config, "poll")
    assert len(receiver.posts) == 1
    wl = tmp_path / "watchlist.toml"
    wl.write_text(
        wl.read_text("utf-8")
        + '\n[[entity]]\nid = "tran-thi-nga-moi"\nlabel = "Trần Thị Nga Mới"\nkind = "person"\n'
        + 'priority = "high"\nterms = ["Trần Thị Nga Mới"]\n',
        "utf-8",
    )
    result = d24(capsys, config, "rematch")
    assert result.code == 0 and "deliveries: 1 sent" in result.out
    assert len(receiver.posts) == 2
    second = json.loads(receiver.posts[1].body)
    assert [e["id"] for e in second["entities"]] == ["tran-thi-nga-moi"]
    assert receiver.posts[0].headers["x-d24watch-delivery"] != receiver.posts[1].headers["x-d24watch-delivery"]
    assert d24(capsys, config, "rematch").code == 0 and len(receiver.posts) == 2


def test_deliver_exits_1_while_the_receiver_refuses_and_0_once_it_accepts(
    tmp_path: Path, server: LocalServer, receiver: Receiver, capsys: Any
) -> None:
    """`deliver` reports what still fails with exit 1; `status` shows the failing delivery."""
    _articles(server, {"/binh": ("Labour official detained", [BINH])})
    config = _config(tmp_path, feed_source("Local", server.url("/feed")), _webhook(receiver))
    d24(capsys, config, "init")
    receiver.answers = [(500, {}), (500, {})]
    poll = d24(capsys, config, "poll")
    assert poll.code == 0 and "1 kept for a retry" in poll.out and "HTTP 500" in poll.out
    waiting = d24(capsys, config, "deliver")  # the back-off has not passed: nothing is tried
    assert waiting.code == 1 and "deliveries: 0 sent" in waiting.out and len(receiver.posts) == 1
    _back_off_passed(tmp_path)
    failed = d24(capsys, config, "deliver")
    assert failed.code == 1 and "failing" in failed.err
    status = d24(capsys, config, "status")
    assert "1 failing" in status.out and "webhook mention after 2 attempts: HTTP 500" in status.out
    _back_off_passed(tmp_path)
    assert d24(capsys, config, "deliver").code == 0
    assert "0 pending, 0 failing" in d24(capsys, config, "status").out
    assert len(receiver.accepted()) == 1


def _back_off_passed(folder: Path) -> None:
    """Move every pending delivery's next attempt into the past, as if the back-off had run."""
    db = sqlite3.connect(folder / "state" / "d24watch.db")
    db.execute("UPDATE outbox SET next_attempt_at = '2000-01-01T00:00:00Z' WHERE status = 'pending'")
    db.commit()
    db.close()


def test_an_unreachable_receiver_keeps_the_delivery_and_the_secret_out_of_errors(
    tmp_path: Path, server: LocalServer, capsys: Any
) -> None:
    """A Slack URL that refuses connections: the poll still exits 0, the error names no secret."""
    _articles(server, {"/binh": ("Labour official detained", [BINH])})
    hook = "http://127.0.0.1:9/services/T000/B000/secret-token-xyz"
    config = _config(
        tmp_path,
        feed_source("Local", server.url("/feed")),
        f'\n[notify.slack]\nmode = "immediate"\nwebhook_url = "{hook}"\n',
    )
    d24(capsys, config, "init")
    poll = d24(capsys, config, "poll")
    assert poll.code == 0 and "cannot connect" in poll.out
    status = d24(capsys, config, "status")
    assert "1 failing" in status.out
    for text in (poll.out, poll.err, status.out, status.err):
        assert "secret-token-xyz" not in text


# -- Slack ----------------------------------------------------------------------------------------


def test_slack_message_keeps_mentions_and_links_from_an_article_inert(
    tmp_path: Path, server: LocalServer, receiver: Receiver, capsys: Any
) -> None:
    """A title carrying <!channel>, <@U123> and a disguised link reaches Slack escaped, in every field."""
    title = "<!channel> urgent <@U123> <http://evil.example|click> & more"
    _articles(server, {"/binh": (title, [BINH, "Readers wrote <!here> in the comments."])})
    hook = receiver.url("/services/T000/B000/XXXX")
    config = _config(
        tmp_path,
        feed_source("Local", server.url("/feed")),
        f'\n[notify.slack]\nmode = "immediate"\nwebhook_url = "{hook}"\n',
    )
    d24(capsys, config, "init")
    d24(capsys, config, "poll")
    [post] = receiver.posts
    message = json.loads(post.body)
    texts = [message["text"]] + [t for block in message["blocks"] for t in _block_texts(block)]
    joined = "\n".join(texts)
    for live in ("<!channel>", "<!here>", "<@U123>", "<http://evil.example|click>"):
        assert live not in joined
    assert "&lt;!channel&gt;" in joined and "&lt;@U123&gt;" in joined and "&amp; more" in joined
    assert "Nguyễn Văn Bình" in message["text"] and "&lt;!channel&gt;" in message["text"]
    # The one real link is the article's own, and its label is the escaped title.
    links = [t for t in texts if f"<{server.url('/binh')}|" in t]
    assert links
    assert "*Nguyễn Văn Bình*" in joined  # the hit is marked in its snippet


def _block_texts(block: dict[str, Any]) -> list[str]:
    out = []
    if "text" in block:
        out.append(block["text"]["text"])
    for element in block.get("elements", []):
        out.append(element["text"])
    return out


def test_slack_message_stays_within_slack_limits() -> None:
    """80 entities with long snippets: at most 50 blocks, no text over 3,000 characters."""
    long = "word " * 2000
    payload = {
        "event": "mention",
        "delivery_id": "d" * 32,
        "detected_at": "2026-05-06T10:00:00Z",
        "article": {
            "url": "https://example.org/a?x=1&y=<2>|3",
            "canonical_url": "https://example.org/a",
            "title": "T" * 5000,
            "source": "S",
            "published": None,
            "language": "en",
        },
        "entities": [
            {
                "id": f"e{i}",
                "label": f"Entity {i}",
                "kind": "person",
                "hits": [{"text": "word", "start": 0, "end": 4, "snippet": long} for _ in range(5)],
            }
            for i in range(80)
        ],
    }
    message = slack_message(payload)
    assert len(message["blocks"]) <= SLACK_MAX_BLOCKS
    assert all(len(t) <= SLACK_MAX_TEXT for b in message["blocks"] for t in _block_texts(b))
    assert len(message["text"]) <= SLACK_MAX_TEXT
    assert "more entities" in _block_texts(message["blocks"][-1])[0]
    assert "<https://example.org/a?x=1&amp;y=%3C2%3E%7C3|" in message["blocks"][1]["text"]["text"]


# -- email ------------------------------------------------------------------------------------


def test_email_digest_is_one_multipart_message_grouped_by_entity_and_escaped(
    tmp_path: Path, server: LocalServer, mail: MailServer, capsys: Any
) -> None:
    """One digest over SMTP: subject with the count, plain and HTML parts, articles under each
    entity with source, date, link and a highlighted snippet, failing sources last."""
    _articles(
        server,
        {
            "/both": ("Crackdown <script>alert(1)</script> widens", [BINH, DIRECTIVE]),
            "/hong": ("Campaigner sentenced", [HONG]),
        },
    )
    server.serve("/broken", b"oops", status=500)
    sources = feed_source("Local", server.url("/feed")) + feed_source("Broken", server.url("/broken"))
    config = _config(tmp_path, sources, _email(mail))
    d24(capsys, config, "init")
    d24(capsys, config, "poll")
    result = d24(capsys, config, "digest")
    assert result.code == 0, result.err
    [message] = mail.messages
    assert message["Subject"] == "d24watch: 2 new mentions"
    assert message.get_content_type() == "multipart/alternative"
    assert message["Message-ID"].endswith("@d24watch>")
    plain, html = _parts(message)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<mark" in html and ">Nguyễn Văn Bình</mark>" in html
    assert f'href="{server.url("/both")}"' in html
    # Grouped by entity: high priority first, each heading followed by its articles.
    order = [plain.index(f"== {label}") for label in ("Directive 24", "Nguyễn Văn Bình", "Hoàng Thị Minh Hồng")]
    assert order == sorted(order)
    assert plain.count("Crackdown <script>alert(1)</script> widens") == 2
    assert "[Nguyễn Văn Bình]" in plain and server.url("/hong") in plain and "Local" in plain
    assert plain.index("== Failing sources") > order[-1] and "Broken: fetch: HTTP 500" in plain
    assert "Broken" in html.split("Failing sources")[1]
    assert d24(capsys, config, "digest").out.strip() == "nothing new to digest"
    assert len(mail.messages) == 1


def test_digest_while_smtp_is_down_exits_1_and_goes_out_complete_once_it_is_back(
    tmp_path: Path, server: LocalServer, mail: MailServer, capsys: Any
) -> None:
    """SMTP down: exit 1, nothing marked; back up: every article arrives, once."""
    _articles(server, {"/binh": ("Labour official detained", [BINH]), "/d24": ("Secret order", [DIRECTIVE])})
    config = _config(tmp_path, feed_source("Local", server.url("/feed")), _email(mail))
    d24(capsys, config, "init")
    d24(capsys, config, "poll")
    mail.stop()
    down = d24(capsys, config, "digest")
    assert down.code == 1 and "stays pending" in down.err and "Connection refused" in down.err
    assert "1 failing" in d24(capsys, config, "status").out
    assert d24(capsys, config, "digest").code == 1
    mail.start()
    up = d24(capsys, config, "digest")
    assert up.code == 0 and "digests: 1 sent" in up.out
    [message] = mail.messages
    plain, _ = _parts(message)
    assert "Labour official detained" in plain and "Secret order" in plain
    assert message["Subject"] == "d24watch: 2 new mentions"
    again = d24(capsys, config, "digest")
    assert again.code == 0 and "nothing new" in again.out and len(mail.messages) == 1


def test_starttls_with_login(tmp_path: Path, server: LocalServer, capsys: Any) -> None:
    """STARTTLS to a server with a private certificate (trusted through ca_file), then LOGIN."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        capture_output=True,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip("openssl cannot make a test certificate here")
    mail = MailServer(
        tls_context=tls_context(str(cert), str(key)),
        require_starttls=True,
        auth_require_tls=True,
        authenticator=None,
    )
    mail.smtp["authenticator"] = mail.authenticate
    mail.start()
    try:
        _articles(server, {"/binh": ("Labour official detained", [BINH])})
        extra = _email(mail, security="starttls", username="alerts", ca_file="cert.pem").replace(
            'security = "none"\n', ""
        )
        extra += 'password_env = "D24_TEST_SMTP_PASSWORD"\n'
        os.environ["D24_TEST_SMTP_PASSWORD"] = "mail-pass-1234"
        config = _config(tmp_path, feed_source("Local", server.url("/feed")), extra)
        d24(capsys, config, "init")
        d24(capsys, config, "poll")
        result = d24(capsys, config, "digest")
        assert result.code == 0, result.err
        assert mail.logins == ["alerts"] and len(mail.messages) == 1
    finally:
        os.environ.pop("D24_TEST_SMTP_PASSWORD", None)
        mail.stop()


# -- the file channel and dry runs --------------------------------------------------------------


def test_file_channel_writes_one_eml_and_one_json_per_digest(tmp_path: Path, server: LocalServer, capsys: Any) -> None:
    """The default channel: a digest is a .json payload and an .eml message under state/outbox."""
    _articles(server, {"/binh": ("Labour official detained", [BINH])})
    config = _config(tmp_path, feed_source("Local", server.url("/feed")), "")
    d24(capsys, config, "init")
    d24(capsys, config, "poll")
    dry = d24(capsys, config, "digest", "--dry-run")
    assert dry.code == 0 and "d24watch: 1 new mentions" in dry.out and "Labour official detained" in dry.out
    outbox = tmp_path / "state" / "outbox"
    assert not outbox.exists() or not any(outbox.iterdir())
    assert d24(capsys, config, "digest").code == 0
    files = sorted(p.suffix for p in outbox.iterdir())
    assert files == [".eml", ".json"]
    payload = json.loads(next(outbox.glob("*.json")).read_text("utf-8"))
    assert payload["event"] == "digest" and payload["count"] == 1
    assert [g["id"] for g in payload["entities"]] == ["nguyen-van-binh"]
    assert b"multipart/alternative" in next(outbox.glob("*.eml")).read_bytes()
    assert d24(capsys, config, "digest").code == 0 and len(list(outbox.iterdir())) == 2
    assert "nothing new to digest" in d24(capsys, config, "digest", "--dry-run").err


def test_retry_delay_doubles_up_to_the_longest_and_honours_retry_after() -> None:
    """1m, 2m, 4m … capped at retry_max; a longer Retry-After wins, up to a day."""
    minute, hour = timedelta(minutes=1), timedelta(hours=1)
    assert [retry_delay(n, minute, hour) for n in (1, 2, 3, 7, 50)] == [
        minute,
        2 * minute,
        4 * minute,
        hour,
        hour,
    ]
    assert retry_delay(1, minute, hour, 600) == timedelta(seconds=600)
    assert retry_delay(1, minute, hour, 10) == minute
    assert retry_delay(1, minute, hour, 10**9) == timedelta(days=1)


# -- a poll killed half-way -----------------------------------------------------------------------


def test_a_poll_killed_half_way_and_run_again_delivers_each_match_exactly_once(
    tmp_path: Path, server: LocalServer, receiver: Receiver, capsys: Any
) -> None:
    """SIGKILL while one source stalls, after the others' alerts went out; the rerun sends the
    rest, and no alert twice."""
    for n in range(3):
        _articles(server, {f"/a{n}": (f"Arrest report {n}", [BINH, f"Case number {n}."])}, feed=f"/feed{n}")
    _articles(server, {"/slow-article": ("Late report", [DIRECTIVE])}, feed="/slow-feed")
    slow_feed = server.routes["/slow-feed"]
    server.routes["/slow"] = stall(60)
    sources = "".join(feed_source(f"Fast {n}", server.url(f"/feed{n}")) for n in range(3))
    sources += feed_source("Slow", server.url("/slow"))
    config = _config(tmp_path, sources, _webhook(receiver))
    config.write_text(config.read_text("utf-8").replace("timeout = 5", "timeout = 30"), "utf-8")
    assert d24(capsys, config, "init").code == 0

    proc = subprocess.Popen(
        [sys.executable, "-m", "d24watch", "--config", str(config), "poll"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while len(receiver.accepted()) < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert len(receiver.accepted()) == 3, "the fast sources' alerts should go out while the slow one stalls"
    time.sleep(0.5)  # let the marks of the three deliveries commit
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)

    server.routes["/slow"] = slow_feed
    assert d24(capsys, config, "poll").code == 0
    ids = [p.headers["x-d24watch-delivery"] for p in receiver.posts]
    assert len(ids) == len(set(ids)) == 4
    titles = sorted(json.loads(p.body)["article"]["title"] for p in receiver.posts)
    assert titles == ["Arrest report 0", "Arrest report 1", "Arrest report 2", "Late report"]
    db = sqlite3.connect(tmp_path / "state" / "d24watch.db")
    assert db.execute("SELECT count(*), sum(status = 'sent') FROM outbox").fetchone() == (4, 4)
    db.close()


def test_standard_webhooks_library_verifies_the_call_and_refuses_an_old_one(
    tmp_path: Path, server: LocalServer, receiver: Receiver, capsys: Any, monkeypatch: Any
) -> None:
    """A receiver using the Standard Webhooks library (`standardwebhooks`) verifies d24watch's
    call with the secret in the standard's form, and refuses a body altered in transit or a call
    whose timestamp is more than five minutes old (a replay)."""
    import base64

    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    _articles(server, {"/binh": ("Labour official detained", [BINH])})
    config = _config(tmp_path, feed_source("Local", server.url("/feed")), _webhook(receiver))
    d24(capsys, config, "init")
    assert d24(capsys, config, "poll").code == 0
    [post] = receiver.posts
    hook = Webhook("whsec_" + base64.b64encode(SECRET.encode()).decode())
    assert hook.verify(post.body, post.headers)["delivery_id"] == post.headers["webhook-id"]
    assert post.headers["webhook-id"] == post.headers["x-d24watch-delivery"]
    assert abs(int(post.headers["webhook-timestamp"]) - time.time()) < 60
    with pytest.raises(WebhookVerificationError):
        hook.verify(post.body.replace(b"Labour", b"Lab0ur"), post.headers)

    real = time.time
    monkeypatch.setattr("d24watch.deliver.webhook.time.time", lambda: real() - 600)
    _articles(server, {"/binh": ("Labour official detained", [BINH]), "/directive": ("Secret order", [DIRECTIVE])})
    assert d24(capsys, config, "poll").code == 0
    old = receiver.posts[-1]
    assert old.headers["webhook-id"] != post.headers["webhook-id"]
    with pytest.raises(WebhookVerificationError, match="too old"):
        hook.verify(old.body, old.headers)


def test_a_secret_in_the_standard_form_is_used_as_its_key(
    tmp_path: Path, server: LocalServer, receiver: Receiver, capsys: Any
) -> None:
    import base64

    from standardwebhooks.webhooks import Webhook

    key = base64.b64encode(b"\x00\x01 a binary key of some length \xff").decode()
    _articles(server, {"/binh": ("Labour official detained", [BINH])})
    hook_config = f'\n[notify.webhook]\nmode = "immediate"\nurl = "{receiver.url("/hook")}"\nsecret = "whsec_{key}"\n'
    config = _config(tmp_path, feed_source("Local", server.url("/feed")), hook_config)
    d24(capsys, config, "init")
    assert d24(capsys, config, "poll").code == 0
    [post] = receiver.posts
    assert Webhook(f"whsec_{key}").verify(post.body, post.headers)["event"] == "mention"
