"""The custody log's rule: an append-only list of evidence actions per article (captured,
timestamped, re-checked, changed, removed, exported), each entry carrying the hash of the one
before it, so that altering, removing or reordering an entry breaks every hash after it. Pure: the
store appends, a bundle carries an article's entries as `custody.jsonl`, `verify` checks them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any


def genesis(article_url: str) -> str:
    """The `prev_hash` of an article's first entry: bound to the article it is about."""
    return hashlib.sha256(f"d24watch custody of {article_url}".encode()).hexdigest()


def entry_hash(prev_hash: str, action: str, at: str, detail: Mapping[str, Any]) -> str:
    """SHA-256 over the previous hash and the entry itself, as canonical JSON."""
    body = json.dumps(
        {"prev_hash": prev_hash, "action": action, "at": at, "detail": detail},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def check_chain(article_url: str, entries: Iterable[Mapping[str, Any]]) -> str | None:
    """None when the entries form an unbroken chain from the article's genesis; else what breaks."""
    expected = genesis(article_url)
    for n, entry in enumerate(entries, 1):
        if entry.get("prev_hash") != expected:
            return f"entry {n} ({entry.get('action')}) does not follow the one before it"
        actual = entry_hash(str(entry["prev_hash"]), str(entry["action"]), str(entry["at"]), entry.get("detail") or {})
        if actual != entry.get("hash"):
            return f"entry {n} ({entry.get('action')}) was altered: its hash does not match its content"
        expected = actual
    return None
