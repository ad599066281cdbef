"""The workspace's routes: inbox, entity, article (with its evidence bundle), search, sources,
triage (form and JSON), feeds out, login. Server-rendered with Jinja2 (autoescaped: every
article-derived string is escaped), no script. Each request opens its own read connection, so a
slow page never holds the poll's; endpoints are plain functions, run in Starlette's thread pool."""

from __future__ import annotations

import difflib
import io
import itertools
import json
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from d24watch.app import App
from d24watch.config import SourceConfig
from d24watch.errors import D24WatchError
from d24watch.proposals import propose_unless
from d24watch.records import evidence_bundle
from d24watch.store import Store, iso
from d24watch.store.rows import Mention, SourceRow, StoredHit
from d24watch.store.triage import NOT_RELEVANT, REASONS, VERDICTS
from d24watch.web.access import SESSION_COOKIE, SESSION_DAYS, Access, Grant, Role
from d24watch.web.feeds import FeedContent, atom_feed, json_feed

INBOX_LIMIT = 100  # mentions on one page of the inbox
PAGE = 100
MAX_FORM = 16_384


@dataclass(frozen=True, slots=True)
class Item:
    m: Mention
    snippets: list[list[Piece]]
    events: list[Any]


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    label: str
    priority: str
    items: list[Item]


@dataclass(frozen=True, slots=True)
class SourceLine:
    s: SourceConfig
    r: SourceRow | None
    failing: bool


@dataclass(frozen=True, slots=True)
class Piece:
    text: str
    mark: bool = False


def highlight(text: str, spans: Iterable[tuple[int, int]]) -> list[Piece]:
    """`text` cut into plain and marked pieces at the given (start, end) offsets."""
    out: list[Piece] = []
    at = 0
    for start, end in sorted(spans):
        if start < at or end > len(text) or start >= end:
            continue
        if start > at:
            out.append(Piece(text[at:start]))
        out.append(Piece(text[start:end], True))
        at = end
    if at < len(text):
        out.append(Piece(text[at:]))
    return out


def snippet_pieces(hit: StoredHit) -> list[Piece]:
    at = hit.snippet.find(hit.text)
    if at < 0:
        return [Piece(hit.snippet)]
    return highlight(hit.snippet, [(at, at + len(hit.text))])


def week_chart(
    weeks: list[tuple[str, int]], today: date, *, width: int = 640, height: int = 120, span: int = 208
) -> dict[str, Any]:
    """Bars of mentions per week for an inline SVG: every week (empty ones too) from the first
    mention, or at least 12 weeks back, to this week, at most `span` weeks."""
    counts = dict(weeks)
    this_week = today - timedelta(days=today.weekday())
    first = min((date.fromisoformat(w) for w in counts), default=this_week)
    start = max(min(first, this_week - timedelta(weeks=11)), this_week - timedelta(weeks=span - 1))
    shown = []
    week = start
    while week <= this_week:
        shown.append((week.isoformat(), counts.get(week.isoformat(), 0)))
        week += timedelta(weeks=1)
    top = max((n for _, n in shown), default=0) or 1
    step = width / len(shown)
    plot = height - 20
    bars = [
        {
            "x": round(i * step + step * 0.15, 2),
            "w": round(max(1.0, step * 0.7), 2),
            "h": round(plot * n / top, 2),
            "y": round(height - 14 - plot * n / top, 2),
            "label": f"week of {w}: {n} mention{'s' if n != 1 else ''}",
        }
        for i, (w, n) in enumerate(shown)
        if n
    ]
    return {"width": width, "height": height, "bars": bars, "top": top, "first": shown[0][0], "last": shown[-1][0]}


class Workspace:
    def __init__(self, app: App, access: Access) -> None:
        self.app = app
        self.access = access
        self.env = Environment(
            loader=PackageLoader("d24watch", "templates/web"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals["verdicts"] = VERDICTS
        self.env.globals["reasons"] = REASONS

    # -- plumbing --------------------------------------------------------------------------------

    def grant(self, request: Request) -> Grant:
        header = request.headers.get("authorization", "")
        bearer = header[7:].strip() if header.lower().startswith("bearer ") else None
        token = request.query_params.get("token") if request.url.path.startswith("/feeds/") else None
        return self.access.grant(bearer=bearer, cookie=request.cookies.get(SESSION_COOKIE), query_token=token)

    def gate(self, request: Request, need: Role = "read") -> Grant | Response:
        """The visitor's grant, or the answer that refuses them."""
        if self.access.refused:
            return PlainTextResponse(self.access.refusal() + "\n", status_code=403)
        grant = self.grant(request)
        if grant.role is None:
            wants_html = "text/html" in request.headers.get("accept", "") and request.method == "GET"
            if wants_html and not request.url.path.startswith("/feeds/"):
                return RedirectResponse("/login?" + urlencode({"next": _local_path(request)}), status_code=303)
            return PlainTextResponse(
                "a token is needed: log in, or send Authorization: Bearer TOKEN\n", status_code=401
            )
        if need == "triage" and grant.role != "triage":
            return PlainTextResponse("this needs the triage token\n", status_code=403)
        return grant

    def page(self, name: str, request: Request, grant: Grant, status: int = 200, **values: Any) -> Response:
        template = self.env.get_template(name)
        html = template.render(
            open_workspace=self.access.open,
            role=grant.role,
            csrf=self.access.csrf_token(grant.session),
            path=_local_path(request),
            **values,
        )
        return Response(html, status_code=status, media_type="text/html; charset=utf-8")

    def store(self) -> AbstractContextManager[Store]:
        return self.app.store()

    # -- pages -----------------------------------------------------------------------------------

    def inbox(self, request: Request) -> Response:
        grant = self.gate(request)
        if isinstance(grant, Response):
            return grant
        page = _int(request.query_params.get("page"), 0)
        with self.store() as store:
            mentions = store.inbox(INBOX_LIMIT, page * INBOX_LIMIT)
            groups = self._groups(store, mentions)
            total = store.open_count()
        return self.page(
            "inbox.html", request, grant, groups=groups, count=total, shown=len(mentions), page=page, limit=INBOX_LIMIT
        )

    def _groups(self, store: Store, mentions: list[Mention]) -> list[Group]:
        watchlist = self.app.watchlist
        by_entity: dict[str, list[Item]] = {}
        events: dict[int, list[Any]] = {}
        for m in mentions:
            if m.article_id not in events:
                events[m.article_id] = store.events_of(m.article_id)
            hits = store.hits_for(m.article_id, [m.entity_id]).get(m.entity_id, [])
            by_entity.setdefault(m.entity_id, []).append(
                Item(m, [snippet_pieces(h) for h in hits[:3]], events[m.article_id])
            )
        order = {"high": 0, "normal": 1}
        groups = []
        for entity_id, items in by_entity.items():
            entity = watchlist.get(entity_id)
            label, priority = (entity.label, entity.priority) if entity else (entity_id, "normal")
            groups.append(Group(entity_id, label, priority, items))
        groups.sort(key=lambda g: (order.get(g.priority, 2), -len(g.items), g.label))
        return groups

    def entity(self, request: Request) -> Response:
        grant = self.gate(request)
        if isinstance(grant, Response):
            return grant
        entity_id = request.path_params["entity"]
        entity = self.app.watchlist.get(entity_id)
        if entity is None:
            return self.page("missing.html", request, grant, 404, what=f"No watchlist entity has the id {entity_id!r}.")
        page = _int(request.query_params.get("page"), 0)
        with self.store() as store:
            mentions = store.entity_mentions(entity_id, limit=PAGE, offset=page * PAGE)
            counts = store.entity_counts(entity_id)
            weeks = store.entity_weeks(entity_id)
            history = store.triage_history(entity_id)
            proposal = propose_unless(store.snippets_by_verdict(entity_id), entity.unless)
        return self.page(
            "entity.html",
            request,
            grant,
            entity=entity,
            mentions=mentions,
            counts=counts,
            chart=week_chart(weeks, datetime.now(UTC).date()),
            history=history,
            proposal=proposal,
            proposal_toml=proposal.toml(entity.unless) if proposal and proposal.words else "",
            page=page,
            more=len(mentions) == PAGE,
        )

    def article(self, request: Request) -> Response:
        grant = self.gate(request)
        if isinstance(grant, Response):
            return grant
        article_id = int(request.path_params["article"])
        with self.store() as store:
            row = store.article(article_id)
            if row is None:
                return self.page("missing.html", request, grant, 404, what=f"No article has the id {article_id}.")
            hits = store.hits_for(article_id)
            mentions = store.article_mentions(article_id)
            revisions = store.revisions_of(article_id)
            events = store.events_of(article_id)
            evidence = store.evidence_of(article_id)
            triage = store.triage_of(article_id)
            original = store.article(row.duplicate_of) if row.duplicate_of else None
        spans = [(h.start, h.end) for hs in hits.values() for h in hs if h.field == "text"]
        title_spans = [(h.start, h.end) for hs in hits.values() for h in hs if h.field == "title"]
        diffs = []
        for before, after in itertools.pairwise(revisions):
            lines = difflib.unified_diff(
                before.text.splitlines(),
                after.text.splitlines(),
                f"revision {before.revision}",
                f"revision {after.revision}",
                lineterm="",
                n=1,
            )
            diffs.append({"revision": after, "lines": list(lines)[:400]})
        labels = {e.id: e.label for e in self.app.watchlist.entities}
        return self.page(
            "article.html",
            request,
            grant,
            a=row,
            text=highlight(row.text, spans),
            title=highlight(row.title, title_spans),
            mentions=mentions,
            labels=labels,
            revisions=revisions,
            diffs=diffs,
            events=events,
            evidence=evidence,
            triage=triage,
            original=original,
            links=json.loads(row.links) if row.links else [],
        )

    def evidence(self, request: Request) -> Response:
        grant = self.gate(request)
        if isinstance(grant, Response):
            return grant
        article_id = int(request.path_params["article"])
        with self.store() as store:
            row = store.article(article_id)
        if row is None:
            return PlainTextResponse(f"no article has the id {article_id}\n", status_code=404)
        with tempfile.TemporaryDirectory(prefix="d24watch-evidence-") as folder:
            out = Path(folder) / "bundle"
            try:
                evidence_bundle(self.app, row.url, out)
            except D24WatchError as exc:
                return PlainTextResponse(f"{exc}\n", status_code=500)
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                for path in sorted(out.iterdir()):
                    archive.write(path, f"evidence-{article_id}/{path.name}")
        name = f"d24watch-evidence-{article_id}.zip"
        return Response(
            buffer.getvalue(),
            media_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    def search(self, request: Request) -> Response:
        grant = self.gate(request)
        if isinstance(grant, Response):
            return grant
        q = request.query_params
        query = q.get("q", "")[:300]
        filters = {k: (q.get(k) or "")[:200] for k in ("entity", "source", "language", "since", "until")}
        asked = bool(query.strip() or any(filters.values()))
        with self.store() as store:
            results = (
                store.find_search(query, **{k: v or None for k, v in filters.items()}, limit=PAGE) if asked else []
            )
            languages = store.languages()
        return self.page(
            "search.html",
            request,
            grant,
            query=query,
            filters=filters,
            asked=asked,
            results=[{"r": r, "excerpt": _excerpt(r.excerpt)} for r in results],
            entities=self.app.watchlist.entities,
            sources=[s.name for s in self.app.config.sources],
            languages=languages,
        )

    def sources(self, request: Request) -> Response:
        grant = self.gate(request)
        if isinstance(grant, Response):
            return grant
        with self.store() as store:
            rows = {r.name: r for r in store.source_rows()}
        table = [
            SourceLine(s, rows.get(s.name), bool(rows.get(s.name) and rows[s.name].consecutive_errors))
            for s in self.app.config.sources
        ]
        table.sort(key=lambda t: (not t.failing, not t.s.enabled, t.s.name.lower()))
        return self.page("sources.html", request, grant, table=table)

    # -- triage ----------------------------------------------------------------------------------

    async def triage_form(self, request: Request) -> Response:
        body = await request.body()
        form = {k: v[0] for k, v in parse_qs(body[:MAX_FORM].decode("utf-8", "replace")).items()}
        return await _in_thread(self._triage_form, request, form)

    def _triage_form(self, request: Request, form: dict[str, str]) -> Response:
        grant = self.gate(request, "triage")
        if isinstance(grant, Response):
            return grant
        if not _same_origin(request) or not self.access.csrf_ok(grant.session, form.get("csrf", "")):
            return PlainTextResponse(
                "the form is out of date or came from another site: reload the page\n", status_code=403
            )
        problem = self._record(_int(form.get("article"), -1), form.get("entity", ""), form)
        if problem is not None:
            return PlainTextResponse(problem + "\n", status_code=400)
        back = form.get("next", "/")
        return RedirectResponse(back if back.startswith("/") and not back.startswith("//") else "/", status_code=303)

    async def triage_api(self, request: Request) -> Response:
        body = await request.body()
        return await _in_thread(self._triage_api, request, body[:MAX_FORM])

    def _triage_api(self, request: Request, body: bytes) -> Response:
        header = request.headers.get("authorization", "")
        if self.access.refused:
            return JSONResponse({"error": self.access.refusal()}, status_code=403)
        if not self.access.open:
            token = header[7:].strip() if header.lower().startswith("bearer ") else ""
            role = self.access.role_of_token(token) if token else None
            if role is None:
                return JSONResponse({"error": "send Authorization: Bearer <triage token>"}, status_code=401)
            if role != "triage":
                return JSONResponse({"error": "the read token cannot triage; send the triage token"}, status_code=403)
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            return JSONResponse({"error": "the body is not JSON"}, status_code=400)
        if not isinstance(data, dict):
            return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
        url, entity = str(data.get("url") or ""), str(data.get("entity") or "")
        with self.store() as store:
            row = store.find_article(url)
        if row is None:
            return JSONResponse({"error": f"no stored article has the URL {url}"}, status_code=404)
        problem = self._record(
            row.duplicate_of or row.id, entity, {k: str(v) for k, v in data.items() if v is not None}
        )
        if problem is not None:
            return JSONResponse({"error": problem}, status_code=400)
        return JSONResponse(
            {"ok": True, "article": row.duplicate_of or row.id, "entity": entity, "verdict": data.get("verdict")}
        )

    def _record(self, article_id: int, entity_id: str, form: dict[str, str]) -> str | None:
        verdict = form.get("verdict", "")
        if verdict not in VERDICTS:
            return f"verdict must be one of {', '.join(VERDICTS)}"
        reason = form.get("reason") or None
        if verdict == NOT_RELEVANT:
            reason = reason or "other"
            if reason not in REASONS:
                return f"reason must be one of {', '.join(REASONS)}"
        else:
            reason = None
        note = (form.get("note") or "").strip()[:2000] or None
        with self.store() as store:
            if not store.has_mention(article_id, entity_id):
                return f"article {article_id} has no mention of {entity_id!r}"
            store.set_triage(article_id, entity_id, verdict, reason, note, datetime.now(UTC))
        return None

    # -- feeds -----------------------------------------------------------------------------------

    def feed(self, request: Request) -> Response:
        grant = self.gate(request)
        if isinstance(grant, Response):
            return grant
        name = request.path_params["name"]
        stem, _, kind = name.rpartition(".")
        if kind not in ("atom", "json"):
            return PlainTextResponse("feeds end in .atom or .json\n", status_code=404)
        entity = None if stem == "all" else self.app.watchlist.get(stem)
        if stem != "all" and entity is None:
            return PlainTextResponse(f"no watchlist entity has the id {stem!r}\n", status_code=404)
        with self.store() as store:
            mentions = store.feed_mentions(entity.id if entity else None)
            hits = {
                (m.article_id, m.entity_id): store.hits_for(m.article_id, [m.entity_id]).get(m.entity_id, [])
                for m in mentions
            }
        labels = {e.id: e.label for e in self.app.watchlist.entities}
        base = str(request.base_url).rstrip("/")
        title = f"d24watch: {entity.label}" if entity else "d24watch: all mentions"
        home = f"{base}/entity/{entity.id}" if entity else f"{base}/"
        self_url = f"{base}/feeds/{name}"
        content = FeedContent(
            feed_id=f"urn:d24watch:feed:{stem}",
            title=title,
            self_url=self_url,
            home_url=home,
            mentions=mentions,
            hits=hits,
            labels=labels,
            updated=iso(datetime.now(UTC)) or "",
        )
        if kind == "atom":
            return Response(atom_feed(content), media_type="application/atom+xml; charset=utf-8")
        body = json_feed(content)
        return Response(body, media_type="application/feed+json; charset=utf-8")

    # -- login -----------------------------------------------------------------------------------

    def login_page(self, request: Request) -> Response:
        if self.access.refused:
            return PlainTextResponse(self.access.refusal() + "\n", status_code=403)
        return self.page(
            "login.html", request, Grant(None, ""), next=_safe_next(request.query_params.get("next")), failed=False
        )

    async def login(self, request: Request) -> Response:
        body = await request.body()
        form = {k: v[0] for k, v in parse_qs(body[:MAX_FORM].decode("utf-8", "replace")).items()}
        if self.access.refused:
            return PlainTextResponse(self.access.refusal() + "\n", status_code=403)
        if not _same_origin(request) or not self.access.csrf_ok("", form.get("csrf", "")):
            return PlainTextResponse(
                "the form is out of date or came from another site: reload the page\n", status_code=403
            )
        role = self.access.role_of_token(form.get("token", "").strip()) if not self.access.open else None
        if role is None:
            return self.page(
                "login.html", request, Grant(None, ""), 401, next=_safe_next(form.get("next")), failed=True
            )
        response = RedirectResponse(_safe_next(form.get("next")), status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            self.access.session_for(role),
            max_age=SESSION_DAYS * 86400,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return response

    async def logout(self, request: Request) -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response


async def _in_thread(fn: Callable[..., Response], *args: Any) -> Response:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args)


def _int(value: str | None, default: int) -> int:
    try:
        return max(0, int(value or ""))
    except ValueError:
        return default


def _local_path(request: Request) -> str:
    """The request's path and query without any token, to come back to."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
    return request.url.path + (("?" + urlencode(query)) if query else "")


def _safe_next(value: str | None) -> str:
    return value if value and value.startswith("/") and not value.startswith("//") else "/"


def _same_origin(request: Request) -> bool:
    """A POST whose Origin (when the browser sends one) is this site's own."""
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin != "null"
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


def _excerpt(text: str) -> list[Piece]:
    """A search excerpt, the matched words (between \\x02 and \\x03) marked."""
    out: list[Piece] = []
    for n, part in enumerate(text.replace("\x03", "\x02").split("\x02")):
        if part:
            out.append(Piece(part, n % 2 == 1))
    return out
