"""Responses kept as evidence in WARC files (the only warcio import), readable by standard replay and
archive tools: one gzip-compressed WARC file per day under the state folder, each record found
again by its file, offset and length."""

from __future__ import annotations

import hashlib
import io
import os
import zlib
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from pathlib import Path
from urllib.parse import urlsplit

from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from d24watch import __version__
from d24watch.models import FetchResult, Snapshot
from d24watch.store import Store

# The body is stored as d24watch read it (decompressed), so headers that describe the transfer
# encoding would mislead a replay tool; they are kept under another name.
_TRANSFER_HEADERS = {"content-encoding", "transfer-encoding", "content-length"}


class Archive:
    """One gzip-compressed WARC file a day. A new file starts with a `warcinfo` record (what wrote
    it, with which settings: `info`); each response is followed by its `request` record
    (WARC-Concurrent-To), one gzip member each."""

    def __init__(self, folder: Path, info: dict[str, str] | None = None) -> None:
        self.folder = folder
        self.info = info or {}

    def keep(self, result: FetchResult, fetched_at: datetime) -> Snapshot:
        """Append `result` as a WARC response record and its request; flushed to disk before this
        returns. The snapshot covers both records."""
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
        date = fetched_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        with open(self.folder / name, "ab") as handle:
            if handle.tell() == 0:
                self._warcinfo(WARCWriter(handle, gzip=True), name, date)
            offset = handle.tell()
            # The two records are written to memory first, so their bytes are hashed as they go to
            # disk rather than read back.
            members = io.BytesIO()
            writer = WARCWriter(members, gzip=True)
            response = writer.create_warc_record(
                result.url,
                "response",
                payload=io.BytesIO(result.body),
                http_headers=http_headers,
                warc_headers_dict={"WARC-Date": date, "D24Watch-Body-SHA256": digest},
            )
            record_id = str(response.rec_headers.get_header("WARC-Record-ID"))
            self._write(writer, response)
            self._write(writer, self._request(writer, result, record_id, date))
            data = members.getvalue()
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        length, record_sha256 = len(data), hashlib.sha256(data).hexdigest()
        return Snapshot(name, offset, length, digest, record_id, record_sha256)

    def _warcinfo(self, writer: WARCWriter, name: str, date: str) -> None:
        fields = {"software": f"d24watch/{__version__}", "format": "WARC File Format 1.1", **self.info}
        record = writer.create_warcinfo_record(name, fields)
        record.rec_headers.replace_header("WARC-Date", date)
        self._write(writer, record)

    @staticmethod
    def _request(writer: WARCWriter, result: FetchResult, concurrent_to: str, date: str) -> ArcWarcRecord:
        sent = dict(result.request)
        method = sent.pop("method", "GET")
        parts = urlsplit(result.url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = [(k, v) for k, v in sent.items()] or [("Host", parts.netloc)]
        return writer.create_warc_record(
            result.url,
            "request",
            http_headers=StatusAndHeaders(f"{method} {target} HTTP/1.1", headers, is_http_request=True),
            warc_headers_dict={"WARC-Date": date, "WARC-Concurrent-To": concurrent_to},
        )

    @staticmethod
    def _write(writer: WARCWriter, record: ArcWarcRecord) -> None:
        try:
            writer.write_record(record)
        finally:
            if record.raw_stream is not None:
                record.raw_stream.close()  # warcio spools the payload to a temporary file it does not close

    def record_bytes(self, snapshot: Snapshot) -> bytes:
        """The gzip members holding one response and its request: concatenated, such members are
        a valid .warc.gz."""
        with open(self.folder / snapshot.warc_file, "rb") as handle:
            handle.seek(snapshot.offset)
            return handle.read(snapshot.length)

    def warcinfo_bytes(self, warc_file: str) -> bytes:
        """The warcinfo record a file starts with (its first gzip member), or nothing."""
        path = self.folder / warc_file
        if not path.exists():
            return b""
        with open(path, "rb") as handle:
            data = handle.read(65536)
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            head = inflater.decompress(data)
        except zlib.error:
            return b""
        if not inflater.eof or b"WARC-Type: warcinfo" not in head[:400]:
            return b""
        return data[: len(data) - len(inflater.unused_data)]


def archive_response(
    store: Store, archive: Archive, article_id: int, response: FetchResult, reason: str, now: datetime
) -> Snapshot:
    """Keep `response` in the archive and record where, for the article; inside the caller's transaction."""
    for hop in response.history:  # the redirects on the way are part of what the server said
        store.add_evidence(article_id, hop.url, now, hop.status, f"{reason}: redirect", archive.keep(hop, now))
    snap = archive.keep(response, now)
    store.add_evidence(article_id, response.url, now, response.status, reason, snap)
    return snap


@dataclass(frozen=True, slots=True)
class RecordCheck:
    """One WARC record of a file, checked: its block and payload digests (warcio), and for a
    response its body against D24Watch-Body-SHA256."""

    record_id: str
    kind: str
    uri: str
    problem: str | None


def check_records(data: bytes) -> list[RecordCheck]:
    """Every record of a .warc.gz held in `data`, in order; a file that cannot be read is one
    failed check."""
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    out: list[RecordCheck] = []
    try:
        for record in ArchiveIterator(io.BytesIO(data), check_digests=True):
            body = record.content_stream().read()
            record_id = str(record.rec_headers.get_header("WARC-Record-ID") or "")
            uri = str(
                record.rec_headers.get_header("WARC-Target-URI") or record.rec_headers.get_header("WARC-Filename") or ""
            )
            problem = "; ".join(record.digest_checker.problems) if record.digest_checker.passed is False else None
            recorded = record.rec_headers.get_header("D24Watch-Body-SHA256")
            if problem is None and recorded and hashlib.sha256(body).hexdigest() != recorded:
                problem = "the body does not match its D24Watch-Body-SHA256"
            out.append(RecordCheck(record_id, str(record.rec_type), uri, problem))
    except (ArchiveLoadFailed, OSError, EOFError, ValueError, zlib.error) as exc:
        out.append(RecordCheck("", "?", "", f"the WARC data cannot be read ({str(exc)[:200]})"))
    return out
