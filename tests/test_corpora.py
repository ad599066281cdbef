"""Real-world material written by others (../shared/corpora): every feed parses without an
exception, and stored article text scores at least trafilatura's default."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from d24watch.errors import ParseError
from d24watch.parse import parse_feed
from tests.conftest import SHARED

FEEDS = SHARED / "corpora" / "feeds"
EXTRACTION = SHARED / "corpora" / "extraction"
needs_feeds = pytest.mark.skipif(not FEEDS.is_dir(), reason="../shared/corpora/feeds is not present")
needs_pages = pytest.mark.skipif(not EXTRACTION.is_dir(), reason="../shared/corpora/extraction is not present")


def _feed_files() -> list[Path]:
    skip = {".md", ".json", ".tsv", ".txt", ".py"}
    return sorted(p for p in FEEDS.rglob("*") if p.is_file() and p.suffix not in skip and "LICENSES" not in p.parts)


@needs_feeds
def test_every_corpus_feed_parses_without_an_exception() -> None:
    """Each of feedparser's test feeds and the saved real feeds yields a ParsedFeed or a ParseError
    (the source's error), never any other exception; most real feeds yield entries."""
    files = _feed_files()
    assert len(files) > 700
    with_entries = refused = 0
    for path in files:
        try:
            parsed = parse_feed(path.read_bytes(), "http://feeds.example/" + path.name)
        except ParseError:
            refused += 1
            continue
        with_entries += bool(parsed.entries)
    real = [p for p in files if "real" in p.relative_to(FEEDS).parts[:1]]
    real_ok = sum(1 for p in real if _entries(p))
    assert real_ok >= 0.9 * len(real), f"{real_ok} of {len(real)} real feeds yielded entries"
    assert with_entries + refused <= len(files)


def _entries(path: Path) -> int:
    try:
        return len(parse_feed(path.read_bytes(), "http://feeds.example/").entries)
    except ParseError:
        return 0


@needs_feeds
def test_real_vietnamese_feeds_keep_their_diacritics() -> None:
    folder = FEEDS / "real" / "vietnamese_vnexpress"
    files = sorted(p for p in folder.iterdir() if p.suffix in (".xml", ".rss"))
    assert files
    parsed = parse_feed(files[0].read_bytes(), "https://vnexpress.net/rss")
    assert parsed.entries
    assert any(ch in "ăâđêôơưạảấầẩẫậắằẳẵặ" for e in parsed.entries for ch in e.title.lower())


def _scorer():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("score_extraction", SHARED / "corpora" / "score_extraction.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def trafilatura_default(page: str) -> str:
    import trafilatura

    return trafilatura.extract(page) or ""


@needs_pages
@pytest.mark.parametrize("corpus", ["readability", "dantri"])
def test_stored_text_scores_at_least_trafilatura_default(corpus: str) -> None:
    """Shingle-F1 of d24watch's extraction on a corpus is no lower than trafilatura's defaults."""
    from d24watch.extract import extract_text

    score = _scorer()
    folder = EXTRACTION / corpus
    truth = json.loads((folder / "ground-truth.json").read_text("utf-8"))
    ours, theirs = [], []
    for key, item in truth.items():
        page_path = folder / item["file"] if item.get("file") else folder / "html" / f"{key}.html"
        if not page_path.exists():
            continue
        page = page_path.read_bytes().decode("utf-8", "replace")
        ours.append((item["articleBody"], extract_text(page)))
        theirs.append((item["articleBody"], trafilatura_default(page)))
    assert len(ours) >= 10
    f_ours, f_theirs = _f1(score, ours), _f1(score, theirs)
    assert f_ours >= f_theirs - 1e-9, (f_ours, f_theirs)


def _f1(score, pairs) -> float:  # type: ignore[no-untyped-def]
    precisions, recalls = [], []
    for truth, got in pairs:
        a, b = _shingles(score, truth), _shingles(score, got)
        tp = sum((a & b).values())
        fp = sum((b - a).values())
        fn = sum((a - b).values())
        total = tp + fp + fn or 1
        tp, fp, fn = tp / total, fp / total, fn / total
        precisions.append(tp / (tp + fp) if tp + fp else 0.0)
        recalls.append(tp / (tp + fn) if tp + fn else 0.0)
    p, r = sum(precisions) / len(precisions), sum(recalls) / len(recalls)
    return 2 * p * r / (p + r) if p + r else 0.0


def _shingles(score, text: str):  # type: ignore[no-untyped-def]
    from collections import Counter

    tokens = score.TOKEN.findall(text.lower())
    return Counter(tuple(tokens[i : i + 4]) for i in range(max(1, len(tokens) - 3)))
