"""The workspace through Starlette's test client against a real polled database: every page, the
triage form and API, the feeds, and each refusal of the access rules."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from d24watch import commands
from d24watch.app import App
from d24watch.web import create_app
from tests.helpers import d24, export, fetched
from tests.server import LocalServer
from tests.workspace_world import World, build_world

READ = "read-token-0123456789abcdef"
TRIAGE = "triage-token-0123456789abcdef"


@pytest.fixture
def world(tmp_path: Path, server: LocalServer, capsys: Any) -> World:
    return build_world(tmp_path, server, capsys)


def _client(world: World, listen: str = "127.0.0.1:8024", env: dict[str, str] | None = None) -> TestClient:
    app = App.load(world.config, environ=env or {})
    return TestClient(create_app(app, listen=listen), base_url="http://127.0.0.1:8024", follow_redirects=False)


def _ids(client: TestClient, world: World) -> dict[str, int]:
    with App.load(world.config, environ={}).store() as store:
        return {
            name: store.find_article(url).id  # type: ignore[union-attr]
            for name, url in (
                ("official", world.official),
                ("footballer", world.footballer),
                ("directive", world.directive),
            )
        }


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


# -- pages -------------------------------------------------------------------------------------


def test_inbox_groups_untriaged_mentions_by_entity_with_snippets_and_says_it_is_open(world: World) -> None:
    client = _client(world)
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "No token is set" in html
    assert html.index(">Nguyễn Văn Bình</a>") < html.index(">Directive 24</a>")  # high priority first
    assert "Labour official arrested" in html and "Striker scores twice" in html
    assert "<mark>Nguyễn Văn Bình</mark>" in html and "<mark>Nguyen Van Binh</mark>" in html
    assert "Local news" in html and "2024-12-02 08:00" in html


def test_hostile_titles_render_inert_and_every_answer_carries_the_security_headers(world: World) -> None:
    client = _client(world)
    ids = _ids(client, world)
    for path in ("/", f"/article/{ids['directive']}", "/entity/directive-24", "/search?q=directive", "/sources"):
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert "<script" not in answer.text and "onerror=alert" not in answer.text.replace("onerror=alert(1)&gt;", "")
        headers = answer.headers
        assert "default-src 'none'" in headers["content-security-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "same-origin"
    article = client.get(f"/article/{ids['directive']}").text
    assert "&lt;script&gt;alert(&#34;t&#34;)&lt;/script&gt;" in article


def test_article_page_highlights_hits_and_downloads_the_evidence_bundle(world: World) -> None:
    client = _client(world)
    ids = _ids(client, world)
    html = client.get(f"/article/{ids['official']}").text
    assert "<mark>Nguyễn Văn Bình</mark>" in html and "revision 1" in html
    assert world.official in html
    bundle = client.get(f"/article/{ids['official']}/evidence.zip")
    assert bundle.status_code == 200 and bundle.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(bundle.content)).namelist()
    assert f"evidence-{ids['official']}/SHA256SUMS" in names
    assert any(n.endswith("records.warc.gz") for n in names) and any(n.endswith("revision-001.txt") for n in names)
    assert client.get("/article/999999").status_code == 404


def test_search_filters_by_entity_source_language_and_date(world: World) -> None:
    client = _client(world)
    folded = client.get("/search", params={"q": "nguyen van binh"}).text
    assert "Labour official arrested" in folded and "Striker scores twice" in folded
    only = client.get("/search", params={"q": "", "entity": "directive-24"}).text
    assert "Striker scores twice" not in only and "Directive 24" in only
    assert "Labour official" not in client.get("/search", params={"q": "binh", "since": "2030-01-01"}).text
    assert "1 article" in client.get("/search", params={"q": "hanoi fc", "source": "Local news", "language": "en"}).text


def test_sources_page_lists_failing_sources_first(world: World, server: LocalServer, capsys: Any) -> None:
    text = (
        world.config.read_text("utf-8")
        + f'\n[[sources]]\nname = "Broken"\nkind = "feed"\nurl = "{server.url("/nothing")}"\ninterval = "30m"\n'
    )
    world.config.write_text(text, "utf-8")
    d24(capsys, world.config, "poll", "--source", "Broken")
    html = _client(world).get("/sources").text
    assert html.index("Broken") < html.index("Local news")
    assert "HTTP 404" in html and "interval 30m" in html


# -- triage ------------------------------------------------------------------------------------


def test_marking_a_namesake_keeps_it_out_of_the_inbox_digest_and_feeds_through_rematch(world: World) -> None:
    client = _client(world)
    ids = _ids(client, world)
    page = client.get("/")
    answer = client.post(
        "/triage",
        data={
            "csrf": _csrf(page.text),
            "article": str(ids["footballer"]),
            "entity": "nguyen-van-binh",
            "verdict": "not-relevant",
            "reason": "namesake",
            "note": "the Hanoi FC striker",
            "next": "/",
        },
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    inbox = client.get("/").text
    assert "Striker scores twice" not in inbox and "Labour official arrested" in inbox

    app = App.load(world.config, environ={})
    [(_, digest)] = commands.preview_digests(app)
    digested = json.dumps(digest, ensure_ascii=False)
    assert world.official in digested and world.footballer not in digested
    feed = client.get("/feeds/nguyen-van-binh.json").json()
    assert [i["url"] for i in feed["items"]] == [world.official]

    commands.rematch(app)
    rows = {r["url"]: r for r in fetched(_export(world))}
    assert rows[world.footballer]["triage"]["nguyen-van-binh"] == {
        "verdict": "not-relevant",
        "reason": "namesake",
        "note": "the Hanoi FC striker",
        "decided_at": rows[world.footballer]["triage"]["nguyen-van-binh"]["decided_at"],
    }
    entity = client.get("/entity/nguyen-van-binh").text
    assert "1 not relevant" in entity and "the Hanoi FC striker" in entity
    proposal = re.search(r"<pre>(unless = \[.*?\])</pre>", entity)
    assert proposal and "&#34;Hanoi FC&#34;" in proposal.group(1), entity


def _export(world: World) -> list[dict[str, Any]]:
    import contextlib

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        commands.export(App.load(world.config, environ={}), out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_triage_form_needs_its_csrf_token_and_the_same_origin(world: World) -> None:
    client = _client(world)
    ids = _ids(client, world)
    form = {"article": str(ids["official"]), "entity": "nguyen-van-binh", "verdict": "relevant"}
    assert client.post("/triage", data=form).status_code == 403
    assert client.post("/triage", data={**form, "csrf": "0" * 64}).status_code == 403
    good = _csrf(client.get("/").text)
    assert (
        client.post("/triage", data={**form, "csrf": good}, headers={"Origin": "http://evil.example"}).status_code
        == 403
    )
    assert client.post("/triage", data={**form, "csrf": good, "entity": "directive-24"}).status_code == 400
    assert client.post("/triage", data={**form, "csrf": good}).status_code == 303


# -- access ------------------------------------------------------------------------------------


def test_tokens_log_in_by_cookie_bearer_for_scripts_and_query_token_on_feeds_only(world: World) -> None:
    client = _client(world, env={"D24WATCH_READ_TOKEN": READ, "D24WATCH_TRIAGE_TOKEN": TRIAGE})
    ids = _ids(client, world)
    assert client.get("/", headers={"Accept": "text/html"}).headers["location"] == "/login?next=%2F"
    assert client.get("/").status_code == 401  # a script without a token
    assert client.get("/", params={"token": READ}).status_code == 401  # ?token= is for feeds only
    assert client.get("/feeds/all.atom", params={"token": READ}).status_code == 200
    assert client.get("/", headers={"Authorization": f"Bearer {READ}"}).status_code == 200

    login = client.get("/login")
    assert "No token is set" not in login.text
    bad = client.post("/login", data={"csrf": _csrf(login.text), "token": "wrong-token-123456789", "next": "/"})
    assert bad.status_code == 401 and "not one of this workspace" in bad.text
    good = client.post("/login", data={"csrf": _csrf(login.text), "token": READ, "next": f"/article/{ids['official']}"})
    assert good.status_code == 303 and good.headers["location"] == f"/article/{ids['official']}"
    cookie = good.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict") and "Secure" not in cookie
    page = client.get("/")
    assert page.status_code == 200 and "Read-only" in page.text and 'action="/triage"' not in page.text
    form = {
        "csrf": _csrf(page.text),
        "article": str(ids["official"]),
        "entity": "nguyen-van-binh",
        "verdict": "relevant",
    }
    assert client.post("/triage", data=form).status_code == 403  # the read token cannot triage
    for answer in (page, login, client.get(f"/article/{ids['official']}"), client.get("/feeds/all.atom")):
        assert READ not in answer.text and TRIAGE not in answer.text


def test_triage_api_wants_the_triage_token(world: World) -> None:
    client = _client(world, env={"D24WATCH_READ_TOKEN": READ, "D24WATCH_TRIAGE_TOKEN": TRIAGE})
    body = {"url": world.footballer, "entity": "nguyen-van-binh", "verdict": "not-relevant", "note": "footballer"}
    assert client.post("/api/triage", json=body).status_code == 401
    assert client.post("/api/triage", json=body, headers={"Authorization": f"Bearer {READ}"}).status_code == 403
    done = client.post("/api/triage", json=body, headers={"Authorization": f"Bearer {TRIAGE}"})
    assert done.status_code == 200 and done.json()["ok"] is True
    wrong = client.post("/api/triage", json={**body, "verdict": "maybe"}, headers={"Authorization": f"Bearer {TRIAGE}"})
    assert wrong.status_code == 400 and "verdict" in wrong.json()["error"]
    missing = client.post(
        "/api/triage", json={**body, "url": "http://nowhere.example/x"}, headers={"Authorization": f"Bearer {TRIAGE}"}
    )
    assert missing.status_code == 404
    rows = {r["url"]: r for r in _export(world)}
    assert rows[world.footballer]["triage"]["nguyen-van-binh"]["reason"] == "other"


def test_without_tokens_on_a_public_address_the_workspace_refuses_and_health_goes_on(world: World) -> None:
    client = _client(world, listen="0.0.0.0:8024")
    for path in ("/", "/entity/nguyen-van-binh", "/feeds/all.atom", "/login"):
        refused = client.get(path)
        assert refused.status_code == 403, path
        assert "D24WATCH_READ_TOKEN" in refused.text and "D24WATCH_TRIAGE_TOKEN" in refused.text
    assert client.post("/api/triage", json={}).status_code == 403
    assert client.get("/healthz").status_code == 200 and client.get("/healthz").json()["database"] == "writable"


# -- feeds -------------------------------------------------------------------------------------


def test_atom_and_json_feeds_are_valid_with_stable_ids_and_snippets(world: World) -> None:
    import atoma
    import feedparser

    client = _client(world)
    first = client.get("/feeds/all.atom")
    assert first.headers["content-type"].startswith("application/atom+xml")
    feed = atoma.parse_atom_bytes(first.content)  # strict: RFC 4287's required elements and dates
    assert len(feed.entries) == 3  # the official and the footballer (both Bình), and the directive
    parsed = feedparser.parse(first.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    ids = [e.id_ for e in feed.entries]
    assert ids == [e.id_ for e in atoma.parse_atom_bytes(client.get("/feeds/all.atom").content).entries]
    assert all(i.startswith("urn:d24watch:mention:") for i in ids)
    binh = atoma.parse_atom_bytes(client.get("/feeds/nguyen-van-binh.atom").content)
    assert {e.links[0].href for e in binh.entries} == {world.official, world.footballer}
    assert any("<mark>Nguyễn Văn Bình</mark>" in (e.content.value if e.content else "") for e in binh.entries)
    json_feed = client.get("/feeds/directive-24.json").json()
    assert (
        json_feed["version"] == "https://jsonfeed.org/version/1.1" and json_feed["items"][0]["url"] == world.directive
    )
    assert client.get("/feeds/nobody.atom").status_code == 404
    assert "<script" not in first.text and "&lt;script&gt;" in first.text  # the hostile title stays text


def test_serve_and_run_list_the_workspace_in_help(capsys: Any) -> None:
    from d24watch.cli import main

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "serve" in out and "workspace" in out


def test_export_rows_carry_an_empty_triage_until_marked(world: World, capsys: Any) -> None:
    rows = fetched(export(capsys, world.config))
    assert rows and all(r["triage"] == {} for r in rows)
