"""`d24watch verify PATH`: whether an evidence bundle (a folder `d24watch evidence` wrote) still
holds, each check on a line of its own: every file against SHA256SUMS and against the hashes the
bundle's export custody entry recorded; every WARC record's digests; every timestamp token
against the hash of the record bytes it covers (and its TSA certificate against a CA when one is
given); the custody chain. Nothing here needs d24watch's database or config."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from d24watch.custody import check_chain
from d24watch.errors import NotFoundError
from d24watch.evidence import check_records
from d24watch.timestamps import check_token
from d24watch.webarchive import validate_wacz, wacz_records


@dataclass(frozen=True, slots=True)
class Check:
    ok: bool
    what: str  # the thing checked, named
    detail: str  # what holds, or what is wrong

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.what}: {self.detail}"


def verify_wacz(path: Path) -> list[Check]:
    """A WACZ package: the `wacz` package's validation, then every record's digests."""
    checks = [Check(c.ok, f"{path.name}: {c.name}", "holds" if c.ok else "does not hold") for c in validate_wacz(path)]
    if all(c.ok for c in checks):
        for record in check_records(wacz_records(path)):
            label = f"record {record.record_id or '?'} ({record.kind} {record.uri})"
            checks.append(Check(record.problem is None, label, record.problem or "digests hold"))
    return checks


def verify_bundle(path: Path, tsa_ca: Path | None = None) -> list[Check]:
    """Every check of the bundle (or .wacz) at `path`; NotFoundError when it is neither."""
    if path.is_file() and path.suffix == ".wacz":
        return verify_wacz(path)
    sums_file = path / "SHA256SUMS"
    if not path.is_dir() or not sums_file.is_file():
        raise NotFoundError(f"{path} is not an evidence bundle (no SHA256SUMS in it) nor a .wacz file")
    checks: list[Check] = []
    listed = _sums(sums_file.read_text("utf-8", "replace"))
    present = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()} - {"SHA256SUMS"}
    for name in sorted(set(listed) | present):
        if name not in listed:
            checks.append(Check(False, name, "not listed in SHA256SUMS"))
        elif name not in present:
            checks.append(Check(False, name, "listed in SHA256SUMS but missing"))
        elif hashlib.sha256((path / name).read_bytes()).hexdigest() != listed[name]:
            checks.append(Check(False, name, "its SHA-256 differs from SHA256SUMS"))
        else:
            checks.append(Check(True, name, "matches SHA256SUMS"))

    records = (path / "records.warc.gz").read_bytes() if (path / "records.warc.gz").is_file() else b""
    for record in check_records(records) if records else []:
        label = f"record {record.record_id or '?'} ({record.kind} {record.uri})"
        checks.append(Check(record.problem is None, label, record.problem or "digests hold"))

    ca = tsa_ca or (path / "tsa-ca.pem" if (path / "tsa-ca.pem").is_file() else None)
    stamps_file = path / "timestamps.json"
    if stamps_file.is_file():
        checks.extend(_timestamps(path, stamps_file, records, ca, given=tsa_ca is not None))

    custody_file = path / "custody.jsonl"
    if custody_file.is_file():
        checks.extend(_custody(path, custody_file))
    return checks


def _sums(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        digest, _, name = line.partition("  ")
        if name:
            out[name.strip()] = digest.strip()
    return out


def _timestamps(path: Path, stamps_file: Path, records: bytes, ca: Path | None, *, given: bool) -> list[Check]:
    checks = []
    try:
        stamps = json.loads(stamps_file.read_text("utf-8"))
    except ValueError:
        return [Check(False, "timestamps.json", "not valid JSON")]
    for stamp in stamps:
        label = f"timestamp of record {stamp.get('record_id')}"
        piece = records[int(stamp["offset"]) : int(stamp["offset"]) + int(stamp["length"])]
        if hashlib.sha256(piece).hexdigest() != stamp.get("record_sha256"):
            checks.append(Check(False, label, "the record's bytes no longer have the hash that was timestamped"))
            continue
        token_path = path / str(stamp.get("token"))
        if not token_path.is_file():
            checks.append(Check(False, label, f"its token {stamp.get('token')} is missing"))
            continue
        problem = check_token(token_path.read_bytes(), str(stamp["record_sha256"]), ca)
        if problem is not None:
            checks.append(Check(False, label, problem))
        elif ca is None:
            checks.append(
                Check(
                    True,
                    label,
                    f"covers the record as of {stamp.get('tsa_time')}; the TSA's signature was not checked (give --tsa-ca)",
                )
            )
        else:
            source = ca.name if given else "tsa-ca.pem in the bundle (give --tsa-ca for a copy you trust)"
            checks.append(Check(True, label, f"signed by a TSA under {source}, {stamp.get('tsa_time')}"))
    return checks


def _custody(path: Path, custody_file: Path) -> list[Check]:
    try:
        entries = [json.loads(line) for line in custody_file.read_text("utf-8").splitlines() if line.strip()]
    except ValueError:
        return [Check(False, "custody.jsonl", "a line is not valid JSON")]
    if not entries:
        return [Check(False, "custody.jsonl", "empty")]
    article = str(entries[0].get("article", ""))
    problem = check_chain(article, entries)
    checks = [
        Check(problem is None, "custody chain", problem or f"{len(entries)} entries, each following the one before")
    ]
    exported = next((e for e in reversed(entries) if e.get("action") == "exported"), None)
    hashes = (exported or {}).get("detail", {}).get("sha256", {})
    for name, digest in sorted(hashes.items()):
        target = path / name
        if not target.is_file() or hashlib.sha256(target.read_bytes()).hexdigest() != digest:
            checks.append(Check(False, name, "differs from the hash the custody log recorded at export"))
    if hashes:
        checks.append(Check(True, "custody export entry", f"{len(hashes)} files as exported"))
    return checks
