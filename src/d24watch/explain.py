"""Why an article did or did not alert: `d24watch explain` for a stored article, a page fetched now
(through the same guards, stored nowhere) or a saved file. It reports what extraction kept, the
dedupe decision with its estimates, and every watchlist rule's outcome, using the same decisions
and matcher as a poll."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from d24watch.app import App
from d24watch.decide import boilerplate, copy_candidates, duplicate_of, page_canonical
from d24watch.dedupe import (
    Signature,
    canonical_url,
    compared_signature,
    containment,
    signature,
    similarity,
    site_of,
    text_blocks,
)
from d24watch.errors import NotFoundError, SourceError
from d24watch.extract import extract_and_prepare
from d24watch.fetch import PAGE_ACCEPT, Fetcher
from d24watch.ingest import BLOCK_WINDOW
from d24watch.store import Store
from d24watch.store.rows import Article
from d24watch.text import folded_tokens


@dataclass(frozen=True, slots=True)
class Page:
    """What explain looks at: where it came from, its title and text."""

    origin: str  # stored, fetched, file
    url: str
    title: str
    text: str
    language: str | None
    page_canonical: str | None = None


def explain_stored(app: App, url: str) -> dict[str, Any]:
    with app.store() as store:
        row = store.find_article(url) or store.find_article(canonical_url(url))
        if row is None:
            raise NotFoundError(f"no stored article has the URL {url} (see `d24watch search`)")
        page = Page("stored", row.url, row.title, row.text, row.language)
        return {**_describe(page), "dedupe": _stored_decision(app, store, row), "entities": _entities(app, page)}


def explain_fetched(app: App, url: str) -> dict[str, Any]:
    async def fetch() -> tuple[bytes, str | None, str]:
        async with Fetcher(app.config.fetch) as fetcher:
            result = await fetcher.get(url, accept=PAGE_ACCEPT)
        return result.body, result.charset, result.url

    try:
        body, charset, final = asyncio.run(fetch())
    except SourceError as exc:
        raise NotFoundError(f"cannot fetch {url}: {exc.message}") from None
    return _explain_page(app, body, charset, final, "fetched")


def explain_file(app: App, path: Path) -> dict[str, Any]:
    try:
        body = path.read_bytes()
    except OSError as exc:
        raise NotFoundError(f"cannot read the page {path}: {exc.strerror or exc}") from None
    return _explain_page(app, body, None, path.resolve().as_uri(), "file")


def _explain_page(app: App, body: bytes, charset: str | None, url: str, origin: str) -> dict[str, Any]:
    prepared = extract_and_prepare(body, charset, True)
    article = prepared.article
    page = Page(origin, url, article.title or "", article.text, article.language, article.canonical_url)
    entities = _entities(app, page)
    out = {**_describe(page), "entities": entities}
    if app.config.database.is_file():
        names = frozenset(str(e["id"]) for e in entities if e["matched"])
        with app.store() as store:
            out["dedupe"] = _new_decision(app, store, page, prepared.text_hash, names)
    else:
        out["dedupe"] = {"verdict": "original", "reason": "no database to compare with", "candidates": []}
    return out


def _describe(page: Page) -> dict[str, Any]:
    return {
        "origin": page.origin,
        "url": page.url,
        "title": page.title,
        "text_chars": len(page.text),
        "language": page.language,
    }


def _entities(app: App, page: Page) -> list[dict[str, Any]]:
    return app.matcher().explain(page.title, page.text)


def _scores(new: Signature, old: Signature) -> dict[str, float]:
    return {"jaccard": round(similarity(new, old), 3), "containment": round(containment(new, old), 3)}


def _stored_decision(app: App, store: Store, row: Article) -> dict[str, Any]:
    site, full, mine = _site_blocks(app, store, row.url, row.text, stored=row.duplicate_of is None)
    aside = {"site_blocks_set_aside": len(site), "boilerplate_shingles_set_aside": full.shingles - mine.shingles}
    if row.duplicate_of is None:
        nearest: list[dict[str, Any]] = []
        for article_id, stored in store.near_candidates(mine):
            if article_id != row.id:
                nearest.append({"url": store.article_url(article_id), **_scores(mine, stored)})
        nearest.sort(key=lambda c: -float(c["jaccard"]))
        return {"verdict": "original", "reason": "no stored text it copies", "candidates": nearest[:5], **aside}
    original = store.article(row.duplicate_of)
    scores = _scores(mine, signature(original.text)) if original else {}
    return {
        "verdict": "duplicate",
        "of": store.article_url(row.duplicate_of),
        "rule": row.duplicate_reason,
        **scores,
        "candidates": [],
        **aside,
    }


def _site_blocks(app: App, store: Store, url: str, text: str, *, stored: bool) -> tuple[set[int], Signature, Signature]:
    """The lines of `text` that are its site's recurring blocks (as a poll would set them aside
    now; a stored original's own page is not counted), the whole text's signature and the one it
    is compared by."""
    blocks = text_blocks(text)
    keys = [key for key, _ in blocks]
    counts = store.block_pages(site_of(url), keys, app.clock() - BLOCK_WINDOW)
    if stored:
        counts = {b: n - 1 for b, n in counts.items()}
    site = boilerplate(keys, counts, {})
    full = signature(text)
    return site, full, compared_signature(full, text, blocks, site, len(folded_tokens(text)))


def _new_decision(app: App, store: Store, page: Page, text_hash: str, names: frozenset[str]) -> dict[str, Any]:
    """What a poll would decide for this page now, against the stored corpus."""
    site, full, sig = _site_blocks(app, store, page.url, page.text, stored=False)
    set_aside = full.shingles - sig.shingles
    feed_canonical = canonical_url(page.url)
    canonical = page_canonical(feed_canonical, page.page_canonical)
    candidates = copy_candidates(
        by_canonical=store.by_canonical(canonical) if canonical != feed_canonical else None,
        by_hash=store.by_text_hash(text_hash),
        near=store.near_candidates(sig),
        sig=sig,
        text=page.text,
        threshold=app.config.near_duplicate_threshold,
    )
    named = {c.article_id: store.entities_of(c.article_id) for c in candidates}
    listed = []
    for c in candidates:
        row = store.article(c.article_id)
        listed.append(
            {
                "url": store.article_url(c.article_id),
                "rule": c.reason,
                **(_scores(sig, signature(row.text)) if row else {}),
                "names_everything_this_text_names": names <= named.get(c.article_id, frozenset()),
            }
        )
    copy = duplicate_of(candidates, names, named)
    aside = {"site_blocks_set_aside": len(site), "boilerplate_shingles_set_aside": set_aside}
    if copy is None:
        reason = "no stored text it copies"
        if candidates:
            reason = "it names someone every stored copy lacks"
        return {"verdict": "original", "reason": reason, "candidates": listed, **aside}
    return {
        "verdict": "duplicate",
        "of": store.article_url(copy.article_id),
        "rule": copy.reason,
        "candidates": listed,
        **aside,
    }


def render(report: dict[str, Any]) -> str:
    """The explanation as lines for a terminal."""
    lines = [
        f"{report['origin']} page: {report['url']}",
        f"title: {report['title'] or '(none)'}",
        f"text: {report['text_chars']} characters, language {report['language'] or 'unknown'}",
    ]
    dedupe = report["dedupe"]
    if dedupe["verdict"] == "duplicate":
        scores = ""
        if "jaccard" in dedupe:
            scores = f" (Jaccard {dedupe['jaccard']:.2f}, containment {dedupe['containment']:.2f})"
        lines.append(f"dedupe: duplicate of {dedupe['of']} by rule {dedupe['rule']}{scores}")
    else:
        lines.append(f"dedupe: original ({dedupe['reason']})")
    if dedupe.get("site_blocks_set_aside"):
        lines.append(
            f"  site boilerplate set aside: {dedupe['site_blocks_set_aside']} lines, "
            f"{dedupe['boilerplate_shingles_set_aside']} shingles"
        )
    for c in dedupe.get("candidates", []):
        extra = ""
        if "names_everything_this_text_names" in c and not c["names_everything_this_text_names"]:
            extra = "; lacks an entity this text names"
        rule = f" by {c['rule']}" if "rule" in c else ""
        lines.append(
            f"  candidate{rule}: {c['url']} (Jaccard {c.get('jaccard', 0):.2f}, containment {c.get('containment', 0):.2f}{extra})"
        )
    if not report["entities"]:
        lines.append("entities: no watchlist term, alias, variant or descriptor occurs")
    for e in report["entities"]:
        lines.append(f"{e['id']} ({e['label']}): {e['verdict']}")
        for form in e["forms"]:
            lines.append(f"  form {form['how']}: {form['text']!r} at {form['field']} {form['start']}-{form['end']}")
        if e["needs_context"]:
            found = ", ".join(e["context"]) or "none found"
            lines.append(f"  context: {found}")
        if e["context_from_feed"]:
            lines.append(f"  context from the feed: {', '.join(e['context_from_feed'])}")
        if e["descriptors"]:
            lines.append(f"  descriptors: {', '.join(e['descriptors'])}")
        if e["unless"]:
            lines.append(f"  unless: {', '.join(e['unless'])}")
        for x in e["excluded"]:
            lines.append(f"  excluded: {x['text']!r} at {x['field']} {x['start']}-{x['end']}")
    return "\n".join(lines) + "\n"
