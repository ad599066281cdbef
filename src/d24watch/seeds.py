"""The bundled seed corpus (the five documents that revealed Directive 24 and reported on it):
stored once, at init, as already seen, so that later reprints of them are duplicates. Their hits
are recorded for export; the alert rule never queues anything for a seed."""

from __future__ import annotations

from datetime import datetime
from importlib import resources

from d24watch.alerts import plan_alerts
from d24watch.dedupe import signature, text_hash
from d24watch.match import Matcher
from d24watch.store import Store, iso
from d24watch.store.rows import NewArticle

SEED_SOURCE = "seed"
SEED_PREFIX = "urn:d24watch:seed:"


def seed_documents() -> list[tuple[str, str]]:
    """(name, text) of the bundled seed corpus, in order."""
    folder = resources.files("d24watch") / "seeds"
    return sorted(
        (p.name.removesuffix(".txt"), p.read_text(encoding="utf-8"))
        for p in folder.iterdir()
        if p.name.endswith(".txt")
    )


def seed_titles() -> dict[str, str]:
    """Titles of the seed documents, from the table in the bundled seeds/README.md."""
    readme = (resources.files("d24watch") / "seeds" / "README.md").read_text(encoding="utf-8")
    titles = {}
    for line in readme.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].endswith(".txt"):
            titles[cells[0].removesuffix(".txt")] = cells[1]
    return titles


def import_seeds(store: Store, matcher: Matcher, now: datetime) -> int:
    """Store the seed documents not yet stored, in one transaction; how many were."""
    count = 0
    titles = seed_titles()
    with store.transaction():
        for name, raw in seed_documents():
            url = SEED_PREFIX + name
            if store.seen_item(SEED_SOURCE, url, None) is not None:
                continue
            text = raw.strip()
            row = NewArticle(
                source=SEED_SOURCE,
                url=url,
                canonical_url=url,
                guid=name,
                title=titles.get(name, name),
                fetched_at=iso(now) or "",
                language="en",
                text=text,
                text_hash=text_hash(text),
            )
            article_id = store.insert_article(row, signature(text))
            plan = plan_alerts(
                "new",
                article_id=article_id,
                matches=matcher.match(row.title, text),
                had=frozenset(),
                channels=(),
                watchlist=matcher.watchlist,
                is_seed=True,
            )
            store.apply_alerts(article_id, 1, plan, now)
            count += 1
        store.set_meta("seeds_imported", iso(now) or "")
    return count
