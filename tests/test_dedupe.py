"""MinHash estimates against the true Jaccard similarity, and the migration that recomputes stored
signatures."""

from __future__ import annotations

import random
from pathlib import Path

from d24watch.dedupe import SHINGLE, block_hashes, is_near_duplicate, own_text, signature, similarity
from d24watch.store import MIGRATIONS, Store
from d24watch.text import folded_tokens
from tests.prose import prose


def _shingles(text: str) -> set[str]:
    words = folded_tokens(text)
    return {" ".join(words[i : i + SHINGLE]) for i in range(len(words) - SHINGLE + 1)}


def _edit(text: str, share: float, rng: random.Random) -> str:
    words = text.split()
    for _ in range(max(1, int(len(words) * share))):
        words[rng.randrange(len(words))] = rng.choice(["tiger", "lotus", "harbour", "ferry"])
    return " ".join(words)


def test_estimated_similarity_follows_the_true_jaccard_for_every_document() -> None:
    """200 texts edited by 1% and 5%: every estimate lies within 0.15 of the true Jaccard, and every
    1% copy is found at the 0.8 threshold. (With too small permutation coefficients one edited
    shingle moved most minima at once: a 1% copy could score 0.29.)"""
    rng = random.Random(5)
    for n in range(100):
        text = " ".join(prose(70_000 + n, words=700))
        for share in (0.01, 0.05):
            copy = _edit(text, share, rng)
            a, b = _shingles(text), _shingles(copy)
            truth = len(a & b) / len(a | b)
            estimate = similarity(signature(copy), signature(text))
            assert abs(estimate - truth) <= 0.15, (n, share, truth, estimate)
            if share == 0.01:
                assert estimate >= 0.8


def test_unrelated_texts_are_not_similar() -> None:
    pairs = [(" ".join(prose(80_000 + n)), " ".join(prose(90_000 + n))) for n in range(100)]
    assert max(similarity(signature(a), signature(b)) for a, b in pairs) < 0.2


def test_migration_recomputes_stored_signatures(tmp_path: Path) -> None:
    """A database signed with the old permutations gets every original's signature made anew."""
    store = Store(tmp_path / "d.db")
    with store.transaction():
        for number in range(2):
            MIGRATIONS[number](store.db)
        store.conn.execute("PRAGMA user_version = 2")
    text = " ".join(prose(4242))
    with store.transaction():
        store.conn.execute(
            "INSERT INTO articles(id, source, url, canonical_url, title, fetched_at, text, text_hash) "
            "VALUES (1, 's', 'u', 'u', 't', '2024-01-01T00:00:00Z', ?, 'h')",
            (text,),
        )
        store.conn.execute("INSERT INTO signatures(article_id, shingles, sig) VALUES (1, 5, x'00')")
        store.conn.execute("INSERT INTO lsh(key, article_id) VALUES (123, 1)")
    assert store.migrate() == len(MIGRATIONS) - 2
    shingles, blob = store.conn.execute("SELECT shingles, sig FROM signatures WHERE article_id = 1").fetchone()
    assert blob == signature(text).to_bytes() and shingles == signature(text).shingles
    assert store.conn.execute("SELECT count(*) FROM lsh WHERE key = 123").fetchone()[0] == 0
    assert store.conn.execute("SELECT count(*) FROM lsh WHERE article_id = 1").fetchone()[0] > 0
    store.close()


def test_a_site_block_is_a_line_and_the_own_text_is_what_remains() -> None:
    """Lines of six words or more have keys (each once); the own text drops only the blocks named."""
    text = "Short line.\nOther opinion columns: a b c d e f\nThe story itself has its own words here.\nOther opinion columns: a b c d e f"
    keys = block_hashes(text)
    assert len(keys) == 2
    sidebar = block_hashes("Other opinion columns: a b c d e f")[0]
    assert own_text(text, {sidebar}) == "Short line.\nThe story itself has its own words here."
    assert own_text(text, set()) == text


def test_containment_needs_enough_own_shingles() -> None:
    """A short text inside a long one is not a copy of it by containment alone."""
    long_text = " ".join(prose(90, 600))
    short = " ".join(long_text.split()[100:130])  # 30 words: 26 shingles
    assert not is_near_duplicate(signature(short), signature(long_text), 0.8)
    longer = " ".join(long_text.split()[100:220])
    assert is_near_duplicate(signature(longer), signature(long_text), 0.8)
