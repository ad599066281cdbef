"""Detection on text nobody here wrote: the labelled passages of ../shared/corpora/mentions-dev,
and the extraction and feed corpora, which name no watchlist entity. These tests skip with a
reason when ../shared is absent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from d24watch.errors import ParseError
from d24watch.extract import extract_text
from d24watch.match import Matcher
from d24watch.parse import parse_feed
from d24watch.text import repair_text
from d24watch.watchlist import load_watchlist

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT.parent / "shared" / "corpora"
DEV = CORPORA / "mentions-dev" / "mentions.jsonl"
MATCHER = Matcher(load_watchlist(ROOT / "config" / "watchlist.toml"))


def _passages() -> list[dict[str, object]]:
    if not DEV.is_file():
        pytest.skip(f"the labelled passages are not at {DEV}")
    return [json.loads(line) for line in DEV.read_text("utf-8").splitlines() if line.strip()]


def _found(text: str) -> set[str]:
    return {m.entity_id for m in MATCHER.match("", repair_text(text))}


def test_no_hard_negative_of_the_dev_set_is_flagged() -> None:
    """Namesakes, other directives numbered 24, detainees not on the watchlist: no hit at all."""
    flagged = {
        str(row["id"]): sorted(_found(str(row["text"])))
        for row in _passages()
        if row["kind"] == "hard-negative" and _found(str(row["text"]))
    }
    assert flagged == {}


def test_the_shipped_watchlist_keeps_its_precision_and_recall_on_the_dev_set() -> None:
    """A floor under the figures bench/bench_detection.py prints, so a change that loses mentions
    (or adds false ones) fails here and not only in a benchmark."""
    tp = fp = fn = 0
    by_kind: dict[str, list[int]] = {}
    for row in _passages():
        labels, found = set(row["labels"]), _found(str(row["text"]))  # type: ignore[call-overload]
        tp, fp, fn = tp + len(found & labels), fp + len(found - labels), fn + len(labels - found)
        kind = by_kind.setdefault(str(row["kind"]), [0, 0])
        kind[0] += len(found & labels)
        kind[1] += len(labels)
    assert tp / (tp + fp) >= 0.97
    assert tp / (tp + fn) >= 0.85
    assert by_kind["hard-positive"][0] / by_kind["hard-positive"][1] >= 0.60
    full = [a + b for a, b in zip(by_kind["positive"], by_kind["multi"], strict=True)]
    assert full[0] / full[1] >= 0.97


def test_the_corpora_name_no_watchlist_entity() -> None:
    """Every page of the extraction corpus and every entry of the feed corpus: nothing matches
    (none of them is about the directive or a detainee)."""
    if not CORPORA.is_dir():
        pytest.skip(f"the corpora are not at {CORPORA}")
    matched = []
    pages = sorted((CORPORA / "extraction").glob("*/html/*.htm*"))
    for page in pages:
        if MATCHER.match("", repair_text(extract_text(page.read_bytes()))):
            matched.append(str(page))
    entries = 0
    for feed in sorted(p for p in (CORPORA / "feeds").rglob("*") if p.is_file()):
        try:
            parsed = parse_feed(feed.read_bytes(), "http://corpus.example/feed")
        except ParseError:
            continue
        for entry in parsed.entries:
            entries += 1
            if MATCHER.match(entry.title, entry.summary):
                matched.append(f"{feed}: {entry.title}")
    assert len(pages) > 50 and entries > 1000
    assert matched == []
