"""An article as a record for people and scripts: the JSON line of `export`, and the evidence
bundle of `evidence` (its WARC records, every text revision, hits, snapshots and events, with a
SHA256SUMS over the files)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from d24watch.app import App
from d24watch.dedupe import canonical_url
from d24watch.deliver.payload import article_fields, entities_payload
from d24watch.errors import NotFoundError
from d24watch.models import Snapshot
from d24watch.store import Store
from d24watch.store.rows import Article
from d24watch.watchlist import Watchlist


def article_record(store: Store, watchlist: Watchlist, row: Article) -> dict[str, Any]:
    """The export record: the payload's article fields, the text, what it copies, its entities."""
    return {
        **article_fields(row),
        "fetched_at": row.fetched_at,
        "text": row.text,
        "duplicate_of": store.article_url(row.duplicate_of) if row.duplicate_of else None,
        "entities": entities_payload(watchlist, store.hits_for(row.id)),
        "links": json.loads(row.links) if row.links else [],
        "triage": {
            entity: {"verdict": t.verdict, "reason": t.reason, "note": t.note, "decided_at": t.decided_at}
            for entity, t in store.triage_of(row.id).items()
        },
    }


@dataclass(frozen=True, slots=True)
class Bundle:
    url: str
    snapshots: int
    files: dict[str, str]  # name -> SHA-256


def evidence_bundle(app: App, url: str, out: Path) -> Bundle:
    """Write one article's WARC records, text revisions and hits into `out`."""
    with app.store() as store:
        row = store.find_article(url) or store.find_article(canonical_url(url))
        if row is None:
            raise NotFoundError(f"no stored article has the URL {url} (see `d24watch search`)")
        out.mkdir(parents=True, exist_ok=True)
        archive = app.archive()
        records = store.evidence_of(row.id)
        files: dict[str, bytes] = {}
        files["records.warc.gz"] = b"".join(
            archive.record_bytes(Snapshot(r.warc_file, r.warc_offset, r.warc_length, r.sha256)) for r in records
        )
        for revision in store.revisions_of(row.id):
            header = f"{revision.title}\n{row.url}\nfetched {revision.fetched_at} ({revision.reason})\n\n"
            files[f"revision-{revision.revision:03d}.txt"] = (header + revision.text + "\n").encode()
        record = article_record(store, app.watchlist, row)
        record["snapshots"] = [
            {
                "url": r.url,
                "fetched_at": r.fetched_at,
                "status": r.status,
                "sha256": r.sha256,
                "reason": r.reason,
                "warc_file": r.warc_file,
            }
            for r in records
        ]
        record["events"] = [
            {
                "kind": e.kind,
                "revision": e.revision,
                "detail": json.dumps(e.detail, ensure_ascii=False),
                "found_at": e.found_at,
            }
            for e in store.events_of(row.id)
        ]
        files["article.json"] = json.dumps(record, ensure_ascii=False, indent=2).encode()
        manifest = {}
        for name, data in files.items():
            (out / name).write_bytes(data)
            manifest[name] = hashlib.sha256(data).hexdigest()
        (out / "SHA256SUMS").write_text("".join(f"{h}  {n}\n" for n, h in manifest.items()))
        return Bundle(row.url, len(records), manifest)
