"""Responses kept as evidence in WARC files (the only warcio import), readable by standard replay and
archive tools: one gzip-compressed WARC file per day under the state folder, each record found
again by its file, offset and length."""

from __future__ import annotations

import hashlib
import io
import os
from datetime import datetime
from http import HTTPStatus
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from d24watch.models import FetchResult, Snapshot
from d24watch.store import Store

# The body is stored as d24watch read it (decompressed), so headers that describe the transfer
# encoding would mislead a replay tool; they are kept under another name.
_TRANSFER_HEADERS = {"content-encoding", "transfer-encoding", "content-length"}


class Archive:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def keep(self, result: FetchResult, fetched_at: datetime) -> Snapshot:
        """Append `result` as a WARC response record; flushed to disk before this returns."""
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"d24watch-{fetched_at:%Y%m%d}.warc.gz"
        digest = hashlib.sha256(result.body).hexdigest()
        headers = [(k, v) for k, v in result.headers.items() if k.lower() not in _TRANSFER_HEADERS]
        headers += [(f"X-Original-{k}", v) for k, v in result.headers.items() if k.lower() in _TRANSFER_HEADERS]
        headers.append(("Content-Length", str(len(result.body))))
        try:
            phrase = HTTPStatus(result.status).phrase
        except ValueError:
            phrase = "Unknown"
        http_headers = StatusAndHeaders(f"{result.status} {phrase}", headers, protocol="HTTP/1.1")
        with open(self.folder / name, "ab") as handle:
            offset = handle.tell()
            writer = WARCWriter(handle, gzip=True)
            record = writer.create_warc_record(
                result.url,
                "response",
                payload=io.BytesIO(result.body),
                http_headers=http_headers,
                warc_headers_dict={
                    "WARC-Date": fetched_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "D24Watch-Body-SHA256": digest,
                },
            )
            try:
                writer.write_record(record)
            finally:
                record.raw_stream.close()  # warcio spools the payload to a temporary file it does not close
            handle.flush()
            os.fsync(handle.fileno())
            length = handle.tell() - offset
        return Snapshot(name, offset, length, digest)

    def record_bytes(self, snapshot: Snapshot) -> bytes:
        """The gzip member holding one record: concatenated, such members are a valid .warc.gz."""
        with open(self.folder / snapshot.warc_file, "rb") as handle:
            handle.seek(snapshot.offset)
            return handle.read(snapshot.length)


def archive_response(
    store: Store, archive: Archive, article_id: int, response: FetchResult, reason: str, now: datetime
) -> Snapshot:
    """Keep `response` in the archive and record where, for the article; inside the caller's transaction."""
    snap = archive.keep(response, now)
    store.add_evidence(article_id, response.url, now, response.status, reason, snap)
    return snap
