"""An article as a record for people and scripts: the JSON line of `export`, and the evidence
bundle of `evidence` (its WARC records, every text revision, hits, snapshots and events, with a
SHA256SUMS over the files)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
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
from d24watch.webarchive import write_wacz


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
    """Write one article's WARC records (each file's warcinfo first), text revisions, hits,
    events, timestamp tokens and custody log into `out`, with SHA256SUMS over every file."""
    with app.store() as store:
        row = store.find_article(url) or store.find_article(canonical_url(url))
        if row is None:
            raise NotFoundError(f"no stored article has the URL {url} (see `d24watch search`)")
        out.mkdir(parents=True, exist_ok=True)
        archive = app.archive()
        records = store.evidence_of(row.id)
        files: dict[str, bytes] = {}
        warc = bytearray()
        stamps = []
        started: set[str] = set()
        for r in records:
            if r.warc_file not in started:
                started.add(r.warc_file)
                warc += archive.warcinfo_bytes(r.warc_file)
            offset = len(warc)
            warc += archive.record_bytes(Snapshot(r.warc_file, r.warc_offset, r.warc_length, r.sha256))
            if r.tsa_token is not None and r.record_sha256:
                token_name = f"timestamps/record-{r.id}.tsr"
                files[token_name] = bytes(r.tsa_token)
                stamps.append(
                    {
                        "record_id": r.record_id,
                        "record_sha256": r.record_sha256,
                        "offset": offset,
                        "length": r.warc_length,
                        "token": token_name,
                        "tsa_time": r.tsa_time,
                    }
                )
        files["records.warc.gz"] = bytes(warc)
        if stamps:
            files["timestamps.json"] = json.dumps(stamps, indent=2).encode()
        if app.config.tsa_ca_file is not None:
            files["tsa-ca.pem"] = app.config.tsa_ca_file.read_bytes()
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
                "record_id": r.record_id,
                "record_sha256": r.record_sha256,
                "reason": r.reason,
                "warc_file": r.warc_file,
                "timestamped_at": r.tsa_time,
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
        hashes = {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())}
        with store.transaction():
            store.add_custody(row.id, "exported", {"sha256": hashes}, datetime.now(UTC))
        files["custody.jsonl"] = "".join(
            json.dumps({"article": row.canonical_url, **entry}, ensure_ascii=False, sort_keys=True) + "\n"
            for entry in store.custody_of(row.id)
        ).encode()
        manifest = dict(hashes)
        for name, data in sorted(files.items()):
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            (out / name).write_bytes(data)
        manifest["custody.jsonl"] = hashlib.sha256(files["custody.jsonl"]).hexdigest()
        if records:
            package = f"{_slug(row.canonical_url)}.wacz"
            first = records[0].fetched_at
            write_wacz(out / "records.warc.gz", out / package, url=records[0].url, ts=first, title=row.title)
            manifest[package] = hashlib.sha256((out / package).read_bytes()).hexdigest()
        (out / "SHA256SUMS").write_text("".join(f"{h}  {n}\n" for n, h in sorted(manifest.items())))
        return Bundle(row.url, len(records), manifest)


def _slug(url: str) -> str:
    """A file name from an article's URL: its last path segment, else its host."""
    parts = [p for p in url.split("?", 1)[0].split("/") if p]
    name = parts[-1] if len(parts) > 2 else (parts[1] if len(parts) > 1 else "article")
    cleaned = "".join(c if c.isalnum() or c in "-_" else "-" for c in name.rsplit(".", 1)[0])[:80].strip("-")
    return cleaned or "article"
